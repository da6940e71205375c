"""The verification suite (verify/): expected counts vs the exact reference counter, grid sampling,
Euler's formula, the MILP baseline, the region-count upper bounds, and the runner itself."""

from __future__ import annotations

import math
import random
from fractions import Fraction as Fr
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from verify import cases as vc
from verify.__main__ import main as verify_main, run_case
from verify._reference import reference_count
from verify.cases import _lin as lin
from verify.milp import milp_count

FAST = [c for c in vc.CASES if c.fast]
FAST_2D = [c for c in FAST if c.dim == 2]


def _ref_numbers(r):
    return {"regions": r.num_regions, "pieces": r.num_pieces, "vertices": r.num_vertices,
            "edges": r.num_edges, "adjacency": len(r.adjacency)}


@pytest.mark.parametrize("case", FAST, ids=lambda c: c.name)
def test_reference_matches_formula(case):
    ref = reference_count(case.build(), case.domain)
    got = _ref_numbers(ref)
    for k, v in case.expected().items():
        assert got[k] == v, (case.name, k, v, got[k])


@pytest.mark.parametrize("case", FAST_2D, ids=lambda c: c.name)
def test_euler_2d(case):
    ref = reference_count(case.build(), case.domain)
    assert ref.num_vertices - ref.num_edges + ref.num_regions == 1


def _grid_patterns(net, domain, per_axis):
    """Distinct activation patterns (pre-activation > 0) at a grid of points with an irrational
    offset (so no sample lands exactly on a rational boundary)."""
    axes = []
    for lo, hi in domain:
        lo, hi = float(lo), float(hi)
        t = (np.arange(per_axis) + 0.5 + (math.sqrt(2) - 1.4)) / per_axis
        axes.append(lo + (hi - lo) * t)
    pts = np.stack([g.reshape(-1) for g in np.meshgrid(*axes, indexing="ij")], axis=1)
    x = torch.tensor(pts, dtype=torch.float64)
    bits = []
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.ReLU):
                bits.append(x > 0)
            x = m(x)
    pat = torch.cat(bits, dim=1).numpy()
    return len(np.unique(pat, axis=0))


@pytest.mark.parametrize("case", FAST, ids=lambda c: c.name)
def test_grid_sampling_lower_bound(case):
    per_axis = 20001 if case.dim == 1 else 401
    n = _grid_patterns(case.build(), case.domain, per_axis)
    assert n <= case.regions
    # close: every region of these constructions is wide enough for this grid
    assert n >= 0.9 * case.regions, (n, case.regions)


@pytest.mark.parametrize("name", ["telgarsky_L3", "zaslavsky_box_n4_s2", "fold2_2d_L1",
                                  "serra18_1d_3x3", "zaslavsky_1d_n3_s11"])
def test_milp_agrees_on_tiny_cases(name):
    case = vc.get_case(name)
    res = milp_count(case.build(), case.domain, time_limit=30)
    assert res.complete, res.reason
    assert res.count == case.regions
    assert len(set(res.patterns)) == res.count


# ------------------------------------------------------------------ bounds

def test_bound_formulas_small_values():
    for n in range(1, 8):
        assert vc.serra_upper_bound(1, [n]) == n + 1
        assert vc.serra_upper_bound(2, [n]) == 1 + n + math.comb(n, 2)
        assert vc.montufar_upper_bound(2, [n]) == 1 + n + math.comb(n, 2)
    # 1-D, all widths >= 2: prod(n_l + 1)
    assert vc.serra_upper_bound(1, [3, 4, 5]) == 4 * 5 * 6
    # a width-1 layer is a bottleneck: after it, only j_l <= 1 - j_1 is allowed
    # (j1 = 0: sum_{j2 <= 1} C(5, j2)) + (j1 = 1: j2 = 0)
    assert vc.serra_upper_bound(2, [1, 5]) == 1 * (1 + 5) + 1 * 1
    for widths in ([2, 2], [3, 1, 3], [4, 4, 4], [6, 3], [2, 5, 2]):
        for n0 in (1, 2, 3):
            assert vc.serra_upper_bound(n0, widths) <= vc.montufar_upper_bound(n0, widths)


@pytest.mark.parametrize("case", vc.CASES, ids=lambda c: c.name)
def test_cases_within_upper_bounds(case):
    assert case.regions <= vc.serra_upper_bound(case.dim, case.widths)
    serra = vc.serra_upper_bound(case.dim, case.widths)
    assert serra <= vc.montufar_upper_bound(case.dim, case.widths)
    if case.name.startswith("serra18_1d_"):
        assert case.regions == vc.serra_upper_bound(1, case.widths)  # the bound is attained


def _random_net(widths, n0, seed):
    rng = random.Random(seed)
    mods, prev = [], n0
    for w in widths:
        rows = [[rng.randint(-4, 4) for _ in range(prev)] for _ in range(w)]
        mods += [lin(rows, [Fr(rng.randint(-8, 8), 8) for _ in range(w)]), nn.ReLU()]
        prev = w
    mods.append(lin([[rng.randint(-3, 3) for _ in range(prev)]], [0]))
    return nn.Sequential(*mods)


@pytest.mark.parametrize("seed", range(12))
def test_random_nets_never_exceed_serra_bound(seed):
    rng = random.Random(1000 + seed)
    n0 = 1 + seed % 2
    widths = [rng.randint(1, 4) for _ in range(rng.randint(1, 3))]
    net = _random_net(widths, n0, seed)
    domain = [(Fr(-1), Fr(1))] * n0
    ref = reference_count(net, domain)
    serra = vc.serra_upper_bound(n0, widths)
    assert ref.num_regions <= serra <= vc.montufar_upper_bound(n0, widths)
    assert ref.num_pieces <= ref.num_regions
    # the reference is never below a grid sample of the patterns
    assert _grid_patterns(net, domain, 4001 if n0 == 1 else 201) <= ref.num_regions
    if n0 == 2:
        assert ref.num_vertices - ref.num_edges + ref.num_regions == 1


# ------------------------------------------------------------------ reference corner cases

def test_reference_identically_zero_unit_does_not_split():
    # h = relu(x) on [-1, 1]; layer 2 unit relu(h) is identically zero on x < 0 and x > 0 elsewhere:
    # 2 regions; the layer-2 unit relu(h - 1/2) adds the cut at x = 1/2: 3 regions.
    net = nn.Sequential(lin([[1]], [0]), nn.ReLU(), lin([[1], [1]], [0, Fr(-1, 2)]), nn.ReLU())
    ref = reference_count(net, [(Fr(-1), Fr(1))])
    assert ref.num_regions == 3
    assert sorted(ref.patterns) == sorted([(-1, 0, -1), (1, 1, -1), (1, 1, 1)])
    # 2-D: the same through the first coordinate; the cut is a full vertical line
    net2 = nn.Sequential(lin([[1, 0]], [0]), nn.ReLU(), lin([[1], [1]], [0, Fr(-1, 2)]), nn.ReLU())
    ref2 = reference_count(net2, [(Fr(-1), Fr(1))] * 2)
    assert (ref2.num_regions, ref2.num_vertices, ref2.num_edges) == (3, 8, 10)
    # outputs (0, 0), (x1, 0), (x1, x1 - 1/2): 3 pieces
    assert ref2.num_pieces == 3


def test_reference_merges_pieces_with_equal_maps():
    # relu(x) - relu(x) == 0: two regions, one piece
    net = nn.Sequential(lin([[1], [1]], [0, 0]), nn.ReLU(), lin([[1, -1]], [0]))
    ref = reference_count(net, [(Fr(-1), Fr(1))])
    assert (ref.num_regions, ref.num_pieces) == (2, 1)
    net2 = nn.Sequential(lin([[1, 1], [1, 1]], [0, 0]), nn.ReLU(), lin([[1, -1]], [0]))
    ref2 = reference_count(net2, [(Fr(-1), Fr(1))] * 2)
    assert (ref2.num_regions, ref2.num_pieces) == (2, 1)


def test_reference_bent_hyperplane_by_hand():
    # h1 = relu(x1), h2 = relu(x2) on [-1, 1]^2, then relu(2 h1 + h2 - 1) (no output layer).
    # The layer-2 zero set is bent: 2 x1 + x2 = 1 from (0, 1) to (1/2, 0) in the quadrant x1, x2 >
    # 0, then 2 x1 = 1 from (1/2, 0) to (1/2, -1); on x1 < 0 the unit is h2 - 1 <= 0 (= 0 only on
    # the box edge): no split.  6 regions; vertices: 4 corners, (0, +-1), (+-1, 0), (0, 0), (1/2,
    # 0), (1/2, -1) = 11; edges: 9 on the boundary cycle + 2 (x1 = 0) + 3 (x2 = 0) + 2 (bent) = 16;
    # adjacent pairs = the 7 interior edges.  Pieces: the 4 regions where the unit is off are
    # connected and all output 0 (one piece); 2 x1 + x2 - 1 and 2 x1 - 1 are different: 3 pieces.
    net = nn.Sequential(lin([[1, 0], [0, 1]], [0, 0]), nn.ReLU(), lin([[2, 1]], [-1]), nn.ReLU())
    ref = reference_count(net, [(Fr(-1), Fr(1))] * 2)
    got = (ref.num_regions, ref.num_vertices, ref.num_edges, len(ref.adjacency), ref.num_pieces)
    assert got == (6, 11, 16, 7, 3)
    assert (Fr(1, 2), Fr(-1)) in ref.vertices and (Fr(0), Fr(1)) in ref.vertices


# ------------------------------------------------------------------ runner

def test_runner_fast_passes(capsys):
    argv = ["--fast", "--no-cert", "--case", "telgarsky_L2", "--case", "montufar14_L2"]
    assert verify_main(argv) == 0
    out = capsys.readouterr().out
    assert "telgarsky_L2" in out and "montufar14_L2" in out and "n/a" in out


def test_runner_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        verify_main(["--case", "no_such_case"])
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_runner_reports_a_mismatch():
    import dataclasses
    case = dataclasses.replace(vc.get_case("telgarsky_L2"), regions=5)
    row, problems = run_case(case, None, None, use_milp=False)
    assert any("regions: expected 5, got 4" in p for p in problems)
    assert row["certified"] == "n/a"


def test_runner_uses_a_certifier_when_present():
    class Cert:
        def __init__(self, r):
            self.num_regions, self.num_pieces, self.vertices, self.adjacency = r.num_regions, \
                r.num_pieces, r.vertices, r.adjacency
            self.dim, self._edges = 2, r.num_edges

        def edges(self):
            return [None] * self._edges

    case = vc.get_case("zaslavsky_box_n3_s1")
    row, problems = run_case(case, lambda net, dom: Cert(reference_count(net, dom)),
                             lambda cert, net: True, use_milp=False)
    assert problems == [] and row["check"] == "ok" and row["certified"] != "n/a"
    row, problems = run_case(case, lambda net, dom: 1 / 0, None, use_milp=False)
    assert row["certified"].startswith("ERROR") and problems


# --------------------------------------------------------------------------- golden certificates

GOLDEN_FILES = sorted((Path(__file__).resolve().parents[1] / "verify" / "golden").glob("*.json"))


def test_golden_certificates_exist_for_a_few_cases():
    assert len(GOLDEN_FILES) >= 4


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.stem)
def test_golden_certificate_is_accepted_and_matches_expected(path):
    from verify.__main__ import check_golden

    case = {c.name: c for c in vc.CASES}[path.stem]
    assert check_golden(case) == "ok"


def test_tampered_golden_certificate_is_rejected(tmp_path):
    import json

    import exactrelu

    path = GOLDEN_FILES[0]
    case = {c.name: c for c in vc.CASES}[path.stem]
    data = json.loads(path.read_text())
    data["regions"][0]["witness"][0] = "1000001/1000"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(exactrelu.CertificateError):
        exactrelu.check(exactrelu.Certificate.load(bad), case.build())
