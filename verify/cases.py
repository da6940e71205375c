"""Networks with exactly known region counts, each with its source and its derivation.

Every expected number here is computed from the construction's formula (closed forms, or exact
``Fraction`` geometry of the few lines a construction places by hand), never by running the code
under test or the reference counter.  All parameters are dyadic rationals, so the float64 weights
are set exactly (``_lin`` asserts it) and the "ideal" network is exactly the documented one.

Definitions used below (DESIGN.md): a *region* is a full-dimensional cell of a full activation
pattern with strict states (a unit identically zero on a cell does not split it); a *piece* is a
maximal connected union of adjacent regions with the same exact affine output map.  In 2-D the
*vertices* are the 0-cells and the *edges* the 1-cells of the planar subdivision of the box (region
sides subdivided at every vertex on them), so V - E + F = 1 with F = regions; *adjacency* is the
number of unordered pairs of regions sharing a segment, which is E minus the number of boundary
edges (the box boundary is a cycle: as many boundary edges as boundary vertices).

Sources:
  [T16]  M. Telgarsky, "Benefits of depth in neural networks", COLT 2016.
  [M14]  G. Montufar, R. Pascanu, K. Cho, Y. Bengio, "On the number of linear regions of deep neural
         networks", NeurIPS 2014.
  [S18]  T. Serra, C. Tjandraatmadja, S. Ramalingam, "Bounding and counting linear regions of deep
         neural networks", ICML 2018.
  [Z75]  T. Zaslavsky, "Facing up to arrangements: face-count formulas for partitions of space by
         hyperplanes", Memoirs AMS 154, 1975.
  [M17]  G. Montufar, "Notes on the number of linear regions of deep neural networks", 2017;
         M. Raghu, B. Poole, J. Kleinberg, S. Ganguli, J. Sohl-Dickstein, "On the expressive power
         of deep neural networks", ICML 2017 (the product-of-layer-arrangements bound).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction as Fr
from math import comb, prod

import torch
import torch.nn as nn

__all__ = ["Case", "CASES", "get_case", "serra_upper_bound", "montufar_upper_bound",
           "ToothMap", "montufar_tooth", "serra_tooth", "grid_arrangement_counts"]


# --------------------------------------------------------------------------- bounds

def serra_upper_bound(n0: int, widths) -> int:
    """Theorem 1 of [S18]: the number of linear regions of a ReLU network with n0 inputs and hidden
    widths n_1..n_L is at most  sum_{(j_1..j_L) in J} prod_l C(n_l, j_l),  where
    J = {(j_1..j_L) in Z^L : 0 <= j_l <= min(n0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l) for
    all l}."""
    widths = list(widths)
    total = 0

    def rec(layer, cap, acc):
        nonlocal total
        if layer == len(widths):
            total += acc
            return
        n = widths[layer]
        for j in range(0, min(cap, n) + 1):
            # after choosing j_l, later layers are capped additionally by n_l - j_l
            rec(layer + 1, min(cap, n - j), acc * comb(n, j))

    rec(0, n0, 1)
    return total


def montufar_upper_bound(n0: int, widths) -> int:
    """The simpler product bound ([M17], Raghu et al. 2017): each layer's n_l hyperplanes cut each
    region of the previous layers, a space of dimension at most d_l = min(n0, n_1, ..., n_l), into
    at most sum_{j<=d_l} C(n_l, j) pieces:  prod_l sum_{j=0}^{d_l} C(n_l, j).  Always
    >= serra_upper_bound."""
    out, d = 1, n0
    for n in widths:
        d = min(d, n)
        out *= sum(comb(n, j) for j in range(d + 1))
    return out


# --------------------------------------------------------------------------- helpers

def _lin(rows, bias) -> nn.Linear:
    """nn.Linear with float64 parameters set exactly to the given dyadic rationals."""
    rows = [[Fr(v) for v in r] for r in rows]
    bias = [Fr(v) for v in bias]
    for v in itertools.chain(bias, *rows):
        assert Fr(float(v)) == v, f"parameter {v} is not exactly representable in float64"
    m = nn.Linear(len(rows[0]), len(rows), dtype=torch.float64)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[float(v) for v in r] for r in rows], dtype=torch.float64))
        m.bias.copy_(torch.tensor([float(v) for v in bias], dtype=torch.float64))
    return m


@dataclass
class Case:
    name: str
    source: str
    build: Callable[[], nn.Sequential]
    domain: list  # [(Fraction lo, Fraction hi), ...]
    regions: int
    pieces: int | None = None
    vertices: int | None = None
    edges: int | None = None
    adjacency: int | None = None
    fast: bool = True  # reference runs in well under a second
    milp: bool | None = None  # small enough for the MILP baseline (default: regions <= 64)
    notes: str = ""
    widths: list = field(default_factory=list)  # hidden widths (for the bound checks)

    def __post_init__(self):
        if self.milp is None:
            self.milp = self.regions <= 64

    @property
    def dim(self) -> int:
        return len(self.domain)

    def expected(self) -> dict:
        d = {"regions": self.regions, "pieces": self.pieces, "vertices": self.vertices,
             "edges": self.edges, "adjacency": self.adjacency}
        return {k: v for k, v in d.items() if v is not None}


def _counts_1d(regions):
    # an interval cut at regions-1 interior points: V = regions + 1, E = regions, adjacent
    # pairs = regions - 1
    return dict(vertices=regions + 1, edges=regions, adjacency=regions - 1)


# --------------------------------------------------------------------------- Telgarsky sawtooth

def telgarsky_net(L: int) -> nn.Sequential:
    """Tent m(y) = 2 relu(y) - 4 relu(y - 1/2) on [0,1], composed L times [T16].
    Layer 1 units: relu(x), relu(x - 1/2).  Layer k >= 2 units: relu(y), relu(y - 1/2) where
    y = 2 h1 - 4 h2 is the previous tent output.  Output: 2 h1 - 4 h2 = m^L(x)."""
    mods = [_lin([[1], [1]], [0, Fr(-1, 2)]), nn.ReLU()]
    for _ in range(L - 1):
        mods += [_lin([[2, -4], [2, -4]], [0, Fr(-1, 2)]), nn.ReLU()]
    mods.append(_lin([[2, -4]], [0]))
    return nn.Sequential(*mods)


def telgarsky_transversal_net(L: int) -> nn.Sequential:
    """The same tent written as m(y) = 1 - relu(2y - 1) - relu(1 - 2y) (= 1 - |2y - 1|).
    Layer 1 units: relu(2x - 1), relu(1 - 2x).  Layer k >= 2 (y = 1 - h1 - h2):
    2y - 1 = 1 - 2 h1 - 2 h2 and 1 - 2y = -1 + 2 h1 + 2 h2.  Output 1 - h1 - h2."""
    mods = [_lin([[2], [-2]], [-1, 1]), nn.ReLU()]
    for _ in range(L - 1):
        mods += [_lin([[-2, -2], [2, 2]], [1, -1]), nn.ReLU()]
    mods.append(_lin([[-1, -1]], [1]))
    return nn.Sequential(*mods)


# Derivation (both tents).  m^k maps each of its 2^k pieces monotonically onto [0,1] (slopes
# +-2^k alternate), with m^k = 0 or 1 at every breakpoint and at the ends of [0,1].
#  * Degenerate form: layer-k unit relu(y - 1/2) (y = m^{k-1}(x)) crosses zero once, transversally,
#    inside each of the 2^{k-1} monotone pieces (y sweeps 0..1 there), at a point that is not an
#    existing breakpoint (y = 1/2 there, but y is 0 or 1 at breakpoints): it adds 2^{k-1} cuts.
#    The unit relu(y) has y >= 0 everywhere and y = 0 only where m^{k-1} is 0, which are
#    breakpoints or x = 0 (layer 1: x = 0 only): on every open cell y > 0, so it is "on" on each
#    cell, splits nothing, and the points where it vanishes lie on cell boundaries.  Regions:
#    1 + sum_{k=1}^{L} 2^{k-1} = 2^L.  Pieces: adjacent regions have slopes +2^L and -2^L, so no
#    two adjacent regions merge: 2^L.  So regions == pieces == 2^L.
#  * Transversal form: both layer-k units vanish exactly where y = 1/2, each crossing zero
#    transversally (slope of y is +-2^{k-1} != 0), and have strict signs elsewhere: the same 2^{k-1}
#    cuts per layer, regions = pieces = 2^L, no unit ever touching zero without crossing (the two
#    units of a layer share their zero set, which is a degeneracy of another kind: coincident
#    hyperplanes).

# --------------------------------------------------------------------------- tooth (folding) maps

@dataclass
class ToothMap:
    """g(x) = const + sum_k c[k] * relu(s[k] * (x - t[k])) on [0, W], mapping each of its `teeth`
    monotone pieces onto [0, 1], alternately increasing and decreasing, g(0) = 0."""
    s: list
    t: list
    c: list
    const: Fr
    W: Fr
    teeth: int


def montufar_tooth(n: int) -> ToothMap:
    """n-tooth zigzag of [M14] on [0, n] (integer breakpoints so that every parameter is dyadic):
    units h_k = relu(x - k), k = 0..n-1; g = h_0 + sum_{k=1}^{n-1} (-1)^k 2 h_k.  Slopes +1, -1,
    +1... on [k, k+1]: n teeth, each onto [0,1].  h_0 is the degenerate unit (x >= 0 on the domain,
    = 0 only at its left end), just like relu(x) in the tent."""
    return ToothMap(s=[1] * n, t=[Fr(k) for k in range(n)],
                    c=[Fr(1)] + [Fr(2 * (-1) ** k) for k in range(1, n)], const=Fr(0), W=Fr(n),
                    teeth=n)


def serra_tooth(p: int) -> ToothMap:
    """A (p+1)-tooth zigzag with p units, p >= 3 (the kind [S18] use for their improved lower bound,
    floor(n/n0)+1 instead of floor(n/n0) teeth per coordinate; our own parametrisation):
    slopes a_j = (-1)^j m_j, j = 0..p, with m_j = 1 except m_p = 2 (p odd) or m_{p-2} = 2 (p even);
    piece j has width 1/m_j, so it maps onto [0,1]; W = p + 1/2; breakpoints t_k = sum_{j<k} 1/m_j.
    Units k in S = {p-1, p} point left, relu(t_k - x), the others right, relu(x - t_k); c_k = a_k -
    a_{k-1} is the slope jump at t_k.  Without a skip connection the slope left of t_1 is the one of
    the left-pointing units only: -sum_{k in S} c_k = a_{p-2} - a_p, which equals a_0 = 1 by the
    choice of m (p odd: -1 + 2; p even: 2 - 1).  (With p = 2 no choice works, consistent with
    [S18]'s requirement n_l >= 3 n0.)  const = g(0) - sum_{k in S} c_k t_k = -sum_{k in S}
    c_k t_k."""
    assert p >= 3
    m = [Fr(1)] * (p + 1)
    m[p if p % 2 else p - 2] = Fr(2)
    a = [(-1) ** j * m[j] for j in range(p + 1)]
    t = [sum((1 / m[j] for j in range(k)), Fr(0)) for k in range(1, p + 1)]
    c = [a[k] - a[k - 1] for k in range(1, p + 1)]
    S = {p - 2, p - 1}  # 0-based indices of units p-1, p
    s = [-1 if k in S else 1 for k in range(p)]
    assert -sum(c[k] for k in S) == a[0]
    const = -sum(c[k] * t[k] for k in S)
    return ToothMap(s=s, t=t, c=c, const=const, W=sum((1 / mj for mj in m), Fr(0)), teeth=p + 1)


def tooth_eval(T: ToothMap, x: Fr) -> Fr:
    return T.const + sum(ck * max(Fr(0), sk * (x - tk))
                         for sk, tk, ck in zip(T.s, T.t, T.c, strict=True))


def fold_net(maps: list, d: int, lines=None, out_weights=None) -> nn.Sequential:
    """Layer l applies tooth map maps[l] to each of the d coordinates (block-diagonal weights); the
    input of layer l >= 2 is W_l * g_{l-1}(...), i.e. the previous [0,1]-valued fold rescaled onto
    [0, W_l].  Without `lines` the output is (g(...), ...) (d outputs).  With `lines` (list of
    (a, b) meaning a . y + b, y in [0,1]^d the last fold's output), one more hidden layer relu(a.y +
    b) follows, and the output is out_weights (default: identity, one output per line)."""
    mods = []
    prev = None
    for T in maps:
        rows, bias = [], []
        for coord in range(d):
            for sk, tk in zip(T.s, T.t, strict=True):
                if prev is None:  # s * (x_coord - t)
                    row = [0] * d
                    row[coord] = sk
                    rows.append(row)
                    bias.append(-sk * tk)
                else:  # s * (W * (const' + sum c'_k h_{coord,k}) - t)
                    nprev = len(prev.s)
                    row = [0] * (d * nprev)
                    for k, ck in enumerate(prev.c):
                        row[coord * nprev + k] = sk * T.W * ck
                    rows.append(row)
                    bias.append(sk * (T.W * prev.const - tk))
        mods += [_lin(rows, bias), nn.ReLU()]
        prev = T
    nprev = len(prev.s)

    def y_rows(coeffs):  # the affine map sum_coord coeffs[coord] * y_coord on the last fold units
        row = [0] * (d * nprev)
        for coord in range(d):
            for k, ck in enumerate(prev.c):
                row[coord * nprev + k] = coeffs[coord] * ck
        return row, sum(coeffs) * prev.const

    if lines is None:
        rows, bias = zip(*[y_rows([int(i == j) for j in range(d)]) for i in range(d)], strict=True)
        mods.append(_lin(list(rows), list(bias)))
        return nn.Sequential(*mods)
    rows, bias = [], []
    for a, b in lines:
        r, k = y_rows(a)
        rows.append(r)
        bias.append(k + b)
    mods += [_lin(rows, bias), nn.ReLU()]
    if out_weights is None:
        out_weights = [[int(i == j) for j in range(len(lines))] for i in range(len(lines))]
    mods.append(_lin(out_weights, [0] * len(out_weights)))
    return nn.Sequential(*mods)


# --------------------------------------------------------------------------- 2-D exact counting

def _line_box_points(a, b, box):
    """Points where the line a.y + b = 0 meets the boundary of the box, with the side(s) they lie
    on: list of (point, [(coord, 0|1), ...]).  Exact."""
    pts = {}
    for coord in range(2):
        other = 1 - coord
        if a[other] == 0:
            continue
        for side in (0, 1):
            v = box[coord][side]
            w = -(b + a[coord] * v) / a[other]
            if box[other][0] <= w <= box[other][1]:
                p = [None, None]
                p[coord], p[other] = v, w
                pts.setdefault(tuple(p), []).append((coord, side))
    return list(pts.items())


def box_arrangement(lines, box):
    """Exact data of an arrangement of lines (a, b) (meaning a . y + b = 0) in a closed box,
    asserting general position relative to the box: no line through a corner, no crossing on the
    boundary, no three lines through one interior point. Returns (lines meeting the interior with
    their two boundary sides, number of crossings strictly inside)."""
    meeting = []
    for a, b in lines:
        assert a[0] != 0 or a[1] != 0
        pts = _line_box_points(a, b, box)
        for _, sides in pts:
            assert len(sides) == 1, "line through a box corner"
        if len(pts) == 2:
            meeting.append(((a, b), [sides[0] for _, sides in pts]))
        else:
            assert len(pts) == 0, "line touching the box without meeting its interior"
    seen = set()
    X = 0
    for (a1, b1), (a2, b2) in itertools.combinations(lines, 2):
        det = a1[0] * a2[1] - a1[1] * a2[0]
        if det == 0:
            assert not (a1[0] * b2 == a2[0] * b1 and a1[1] * b2 == a2[1] * b1), "coincident lines"
            continue
        y0 = (-b1 * a2[1] + b2 * a1[1]) / det
        y1 = (-a1[0] * b2 + a2[0] * b1) / det
        inside = box[0][0] < y0 < box[0][1] and box[1][0] < y1 < box[1][1]
        closed = box[0][0] <= y0 <= box[0][1] and box[1][0] <= y1 <= box[1][1]
        assert inside or not closed, "two lines crossing on the box boundary"
        if inside:
            assert (y0, y1) not in seen, "three lines through one point"
            seen.add((y0, y1))
            X += 1
    return meeting, X


def grid_arrangement_counts(F, lines, box):
    """Regions, vertices, edges, adjacency for: a fold of the input box into Nx x Ny cells by grid
    lines (F[c][j] in {0, 1}: the fold of coordinate c maps grid line j onto the low (0) or high (1)
    side of the y-box; a fold alternates, F[c][j] = j mod 2), each cell mapped affinely and
    bijectively onto the y-box, followed by an arrangement of `lines` in the y-box in general
    position. (No fold: F = [[0,1], [0,1]].) Counting: regions = cells * (1 + #lines meeting the
    interior + #interior crossings). Vertices: the (Nx+1)(Ny+1) grid points; X crossings per cell
    (degree 4); each point where a line meets box side (c, v) appears once on every segment of every
    grid line j of coordinate c with F[c][j] = v (N_other segments per grid line), with degree 4 on
    an interior grid line (two cells and the line on both sides) and 3 on the outer boundary. E =
    (sum of degrees) / 2."""
    Nx, Ny = len(F[0]) - 1, len(F[1]) - 1
    N = (Nx, Ny)
    meeting, X = box_arrangement(lines, box)
    cells = Nx * Ny
    regions = cells * (1 + len(meeting) + X)
    V = (Nx + 1) * (Ny + 1) + cells * X
    deg = 4 * 2 + 3 * 2 * ((Nx - 1) + (Ny - 1)) + 4 * (Nx - 1) * (Ny - 1) + 4 * cells * X
    boundary_vertices = 2 * (Nx + Ny)
    for _, sides in meeting:
        for coord, v in sides:
            for j, fj in enumerate(F[coord]):
                if fj != v:
                    continue
                nseg = N[1 - coord]
                outer = j in (0, N[coord])
                V += nseg
                deg += nseg * (3 if outer else 4)
                boundary_vertices += nseg if outer else 0
    assert deg % 2 == 0
    E = deg // 2
    assert V - E + regions == 1  # consistency of the count itself
    return dict(regions=regions, vertices=V, edges=E, adjacency=E - boundary_vertices)


def _fold_values(maps):
    """F at the grid lines of the composed fold: it starts at g(0) = 0 and alternates."""
    N = prod(T.teeth for T in maps)
    return [j % 2 for j in range(N + 1)]


UNIT_BOX = [(Fr(0), Fr(1)), (Fr(0), Fr(1))]

# Hand-placed lines in the y-box [0,1]^2 for the last layer of the [M14] / [S18] constructions.
# No line is axis-parallel, every unit is oriented positive at the centre (1/2, 1/2), and the centre
# lies inside the triangle of the first three lines, so no point has all units off (the intersection
# of the three outer half-planes of a triangle is empty).  Pieces = regions then, for the identity
# output: inside one fold cell adjacent regions differ in the state of one unit; across a fold line
# the two regions have the same pattern, with an active unit i, whose output component
# a_i . F(x) + b_i changes (the fold's slope in the crossed coordinate flips sign and a_i has no
# zero entry).
LINES4 = [
    ((Fr(-1, 8), Fr(1)), Fr(-1, 4)),   # y2 = y1/8 + 1/4, positive above
    ((Fr(3), Fr(-1)), Fr(-1, 2)),      # y2 = 3 y1 - 1/2
    ((Fr(-3), Fr(-1)), Fr(9, 4)),      # y2 = -3 y1 + 9/4
    ((Fr(1), Fr(-1)), Fr(1, 16)),      # y2 = y1 + 1/16, positive below
]


# --------------------------------------------------------------------------- Zaslavsky (one layer)

def random_lines(n: int, seed: int, box, bound: int = 9, all_inside: bool = False):
    """n seeded random integer lines (a, b), drawn until general position relative to the box holds
    (deterministic rejection; with all_inside, also until every crossing is strictly inside)."""
    rng = random.Random(seed)
    while True:
        lines = []
        for _ in range(n):
            a = (Fr(rng.randint(-bound, bound)), Fr(rng.randint(-bound, bound)))
            if a == (0, 0):
                a = (Fr(1), Fr(1))
            lines.append((a, Fr(rng.randint(-bound, bound), 4)))
        try:
            meeting, X = box_arrangement(lines, box)
        except AssertionError:
            continue
        if all_inside and (X != comb(n, 2) or len(meeting) != n):
            continue
        return lines


def one_layer_net(lines, out_weights) -> nn.Sequential:
    return nn.Sequential(_lin([list(a) for a, _ in lines], [b for _, b in lines]), nn.ReLU(),
                         _lin([out_weights], [0]))


def _zaslavsky_case(n, seed):
    box = [(Fr(-1), Fr(1)), (Fr(-1), Fr(1))]
    lines = random_lines(n, seed, box)
    rng = random.Random(seed + 1000)
    outw = [rng.choice([-3, -2, -1, 1, 2, 3]) for _ in range(n)]
    cnt = grid_arrangement_counts([[0, 1], [0, 1]], lines, box)
    # pieces = regions: all output weights are nonzero, so adjacent regions (which differ in exactly
    # one unit's state) have gradients differing by out_w_i * a_i != 0.
    return Case(
        name=f"zaslavsky_box_n{n}_s{seed}",
        source="[Z75] one hidden layer in general position, 2-D box: "
        "1 + #lines meeting the box + #crossings inside",
        build=lambda: one_layer_net(lines, outw), domain=box, pieces=cnt["regions"], widths=[n],
        **cnt)


def _zaslavsky_full_case(n, seed):
    # a box large enough to contain every crossing: regions = sum_{i<=2} C(n, i) (Zaslavsky, R^2)
    rng = random.Random(seed)
    while True:
        lines = [((Fr(rng.randint(-9, 9)), Fr(rng.randint(-9, 9))), Fr(rng.randint(-9, 9)))
                 for _ in range(n)]
        if any(a == (0, 0) for a, _ in lines):
            continue
        pts, ok = [], True
        for (a1, b1), (a2, b2) in itertools.combinations(lines, 2):
            det = a1[0] * a2[1] - a1[1] * a2[0]
            if det == 0:
                ok = False
                break
            pts.append(((-b1 * a2[1] + b2 * a1[1]) / det, (-a1[0] * b2 + a2[0] * b1) / det))
        if ok and len(set(pts)) == len(pts):
            break
    B = Fr(1)
    while any(abs(c) >= B for p in pts for c in p):
        B *= 2
    box = [(-B, B), (-B, B)]
    box_arrangement(lines, box)  # asserts general position w.r.t. this box
    outw = [1 + k % 3 for k in range(n)]
    regions = sum(comb(n, i) for i in range(3))
    cnt = grid_arrangement_counts([[0, 1], [0, 1]], lines, box)
    assert cnt["regions"] == regions
    return Case(
        name=f"zaslavsky_R2_n{n}_s{seed}", source="[Z75] n lines in general position in R^2: "
        "sum_{i<=2} C(n,i) regions (box containing every crossing)",
        build=lambda: one_layer_net(lines, outw), domain=box, pieces=regions, widths=[n], **cnt)


def _zaslavsky_1d_case(n, seed):
    # n units with distinct breakpoints inside [-1, 1]: n + 1 regions (sum_{i<=1} C(n, i))
    rng = random.Random(seed)
    ts = sorted(rng.sample(range(-15, 16), n))
    lines_1d = [(rng.choice([-2, -1, 1, 2]), Fr(t, 16)) for t in ts]  # s * (x - t)
    outw = [rng.choice([-2, -1, 1, 2]) for _ in range(n)]

    def build():
        return nn.Sequential(_lin([[s] for s, _ in lines_1d], [-s * t for s, t in lines_1d]),
                             nn.ReLU(),
                             _lin([outw], [0]))
    return Case(name=f"zaslavsky_1d_n{n}_s{seed}", source="[Z75] n points on a line: n + 1 regions",
                build=build, domain=[(Fr(-1), Fr(1))], regions=n + 1, pieces=n + 1, widths=[n],
                **_counts_1d(n + 1))


# --------------------------------------------------------------------------- the case list

def _build_cases() -> list:
    cases = []
    for L in range(1, 6):
        r = 2 ** L
        cases.append(Case(
            name=f"telgarsky_L{L}",
            source="[T16] tent m(x)=2relu(x)-4relu(x-1/2) composed L times: 2^L pieces",
            build=lambda L=L: telgarsky_net(L), domain=[(Fr(0), Fr(1))], regions=r, pieces=r,
            widths=[2] * L, notes="degenerate unit relu(y) touches 0 at cell boundaries only",
            **_counts_1d(r)))
    for L in range(1, 6):
        r = 2 ** L
        cases.append(Case(
            name=f"telgarsky_transversal_L{L}",
            source="[T16] tent as 1-relu(2y-1)-relu(1-2y), composed L times",
            build=lambda L=L: telgarsky_transversal_net(L), domain=[(Fr(0), Fr(1))], regions=r,
            pieces=r,
            widths=[2] * L, **_counts_1d(r)))
    # n-tooth folding maps [M14]: 1-D n^L, 2-D (block diagonal) N^2 with N = n^L
    for n in (2, 3):
        for L in (1, 2, 3):
            N = n ** L
            maps = [montufar_tooth(n)] * L
            cases.append(Case(
                name=f"fold{n}_1d_L{L}",
                source=f"[M14] {n}-tooth folding map composed {L} times: n^L pieces",
                build=lambda maps=maps: fold_net(maps, 1), domain=[(Fr(0), Fr(n))], regions=N,
                pieces=N,
                widths=[n] * L, **_counts_1d(N)))
            cnt = grid_arrangement_counts([_fold_values(maps)] * 2, [], UNIT_BOX)
            assert cnt == dict(regions=N * N, vertices=(N + 1) ** 2, edges=2 * N * (N + 1),
                               adjacency=2 * N * (N - 1))
            cases.append(Case(
                name=f"fold{n}_2d_L{L}",
                source=f"[M14] {n}-tooth fold per coordinate, {L} layers, [0,{n}]^2: "
                "N^2 regions, (N+1)^2 vertices, 2N(N+1) edges, N = n^L",
                build=lambda maps=maps: fold_net(maps, 2), domain=[(Fr(0), Fr(n))] * 2,
                pieces=N * N,
                widths=[2 * n] * L, fast=N <= 9, **cnt))
    # Montufar et al. 2014 lower bound, n0 = 2, width n = 4 in every layer: L-1 folding layers
    # (floor(n/n0) = 2 teeth per coordinate) then n = 4 lines in general position with all crossings
    # inside [0,1]^2:  prod_{l<L} floor(n/n0)^{n0} * sum_{j<=n0} C(n, j) = 4^{L-1} * 11.
    for L in (2, 3):
        maps = [montufar_tooth(2)] * (L - 1)
        cnt = grid_arrangement_counts([_fold_values(maps)] * 2, LINES4, UNIT_BOX)
        assert cnt["regions"] == 4 ** (L - 1) * sum(comb(4, j) for j in range(3))
        cases.append(Case(
            name=f"montufar14_L{L}",
            source="[M14] Thm: 2-D, width 4, L layers: 4^(L-1) * (1+4+6) regions",
            build=lambda maps=maps: fold_net(maps, 2, LINES4), domain=[(Fr(0), Fr(2))] * 2,
            pieces=cnt["regions"], widths=[4] * L, fast=L <= 2, **cnt))
    # Serra et al. 2018 lower bound, n0 = 2: fold layers of width 6 (p = 3 units per coordinate,
    # p + 1 = 4 teeth each), then n_L lines: prod_{l<L} (floor(n_l/n0)+1)^{n0} * sum_{j<=n0}
    # C(n_L, j).
    for L, nL in ((2, 3), (2, 4)):
        maps = [serra_tooth(3)] * (L - 1)
        lines = LINES4[:nL]
        cnt = grid_arrangement_counts([_fold_values(maps)] * 2, lines, UNIT_BOX)
        assert cnt["regions"] == 16 ** (L - 1) * sum(comb(nL, j) for j in range(3))
        cases.append(Case(
            name=f"serra18_L{L}_n{nL}",
            source=f"[S18] Thm 8 construction: 2-D, widths 6 x {L - 1}, last {nL}: "
            f"16^(L-1) * sum_(j<=2) C({nL},j) regions",
            build=lambda maps=maps, lines=lines: fold_net(maps, 2, lines),
            domain=[(Fr(0), maps[0].W)] * 2,
            pieces=cnt["regions"], widths=[6] * (L - 1) + [nL], fast=nL <= 3, **cnt))
    # 1-D: Serra's bound prod(n_l + 1) (Thm 1 with n0 = 1, all n_l >= 2) is attained by composing
    # (n_l+1)-tooth maps: every monotone piece of the composition so far sweeps the next layer's
    # whole domain [0, W_l], each of the n_l units crosses zero once, transversally, at an interior
    # point there (t_k in (0, W_l)), and cell boundaries map to 0 or W_l: each layer multiplies the
    # count by n_l + 1.  The output g_L alternates its slope sign on adjacent regions, so pieces =
    # regions.
    for widths in ([3], [4], [3, 3], [4, 3], [3, 5], [3, 3, 3], [5, 4, 3]):
        maps = [serra_tooth(p) for p in widths]
        r = prod(p + 1 for p in widths)
        assert r == serra_upper_bound(1, widths)
        cases.append(Case(
            name="serra18_1d_" + "x".join(map(str, widths)),
            source="[S18] Thm 1 bound in 1-D, prod(n_l+1), attained by (n_l+1)-tooth zigzags",
            build=lambda maps=maps: fold_net(maps, 1), domain=[(Fr(0), maps[0].W)], regions=r,
            pieces=r,
            widths=list(widths), **_counts_1d(r)))
    # one hidden layer in general position (Zaslavsky)
    for n, seed in ((3, 1), (4, 2), (6, 3), (8, 4), (12, 5)):
        cases.append(_zaslavsky_case(n, seed))
    for n, seed in ((4, 7), (7, 8)):
        cases.append(_zaslavsky_full_case(n, seed))
    cases.append(_zaslavsky_1d_case(3, 11))
    cases.append(_zaslavsky_1d_case(9, 12))
    names = [c.name for c in cases]
    assert len(set(names)) == len(names)
    return cases


CASES = _build_cases()


def get_case(name: str) -> Case:
    for c in CASES:
        if c.name == name:
            return c
    raise KeyError(name)
