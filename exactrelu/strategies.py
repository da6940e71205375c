"""Hypothesis strategies for exactrelu: small networks, rational domains and points inside them.

In the style of ``hypothesis.extra.numpy``: lower-case plural names, keyword-only options, every
function returns a ``SearchStrategy`` and bad arguments raise :class:`InvalidArgument` (an
:class:`~exactrelu.errors.InvalidInputError`) when the strategy is built, not when it is drawn.

Generated networks are kept small (at most a few hundred regions on the generated domains) so that
:func:`exactrelu.verify` certifies them in well under a second. Every parameter is dyadic (``k /
2^j`` with small ``k``), so float64 arithmetic on them is usually exact and exact certificates stay
cheap (``networks(near_degenerate=True)`` trades that for coincidences float64 cannot resolve).
A generated network carries its per-sample input shape as ``net.input_shape``.

>>> from hypothesis import given
>>> from exactrelu import verify
>>> @given(networks(input_dim=2), boxes(2))
... def test_counts_are_positive(net, box):
...     assert verify(net, box, progress=False).num_regions >= 1
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from ._deps import extra_missing

try:
    from hypothesis import strategies as st
    from hypothesis.strategies import SearchStrategy
except ImportError as err:
    raise extra_missing(err, "exactrelu.strategies", "testing") from err

from .domain import Box, Domain, Polytope, to_fraction
from .errors import InvalidInputError

__all__ = ["InvalidArgument", "networks", "boxes", "domains", "rational_points", "inputs_for"]

ACTIVATIONS = ("relu", "leaky_relu", "hardtanh", "mixed")
KINDS = ("mlp", "conv", "residual")

# Dyadic values: exact in float32 and float64, cheap in rational arithmetic.
_GENERIC = st.integers(-2048, 2048).map(lambda k: k / 1024)
_SMALL = st.sampled_from([0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5])
_SLOPES = (0.0, 0.125, 0.25, 0.5, -0.5, 2.0)
_PLANTS = ("keep", "duplicate", "negate", "zero", "dead", "through", "parallel")
# near_degenerate: weights m 2^e over 70 binades; the planted point has coordinates k / q (q not a
# power of two), so that float64 sums at it round
_MANTISSAS = st.integers(-8, 8).filter(lambda m: m != 0)
_EXPONENTS = st.integers(-60, 10)
_NEAR_POINT = st.sampled_from([3, 5, 7, 10]).flatmap(
    lambda q: st.integers(-(q // 2), q // 2).map(lambda k: k / q))
_NEAR_PLANTS = ("keep", "through", "tilted", "parallel")


class InvalidArgument(InvalidInputError):
    """A strategy was given an argument it cannot use."""


# ----------------------------------------------------------------------------- validation

def _int(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an int, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        top = hi if hi is not None else "inf"
        raise InvalidArgument(f"{name}={value} must be in [{lo}, {top}]")
    return value


def _range(value: Any, name: str, lo: int, hi: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise InvalidArgument(f"{name} must be an int or a (min, max) pair, got {value!r}")
    a = _int(value[0], f"{name}[0]", lo, hi)
    b = _int(value[1], f"{name}[1]", lo, hi)
    if a > b:
        raise InvalidArgument(f"{name}={tuple(value)!r} has min > max")
    return a, b


def _rational(value: Any, name: str) -> Fraction:
    try:
        q = to_fraction(value, name)
    except InvalidInputError as exc:
        raise InvalidArgument(str(exc)) from None
    return q


# ----------------------------------------------------------------------------- networks

class _Residual(nn.Module):
    """``x + act(linear(x))``: a residual block the capture sees as Linear, act and Add."""

    def __init__(self, linear: nn.Linear, act: nn.Module) -> None:
        super().__init__()
        self.linear = linear
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.linear(x))


def _activation(draw: Any, activation: str) -> nn.Module:
    name = activation
    if activation == "mixed":
        name = draw(st.sampled_from(["relu", "leaky_relu", "hardtanh"]))
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(draw(st.sampled_from(_SLOPES)))
    lo = draw(st.sampled_from([-1.0, -0.5, 0.0]))
    return nn.Hardtanh(lo, lo + draw(st.sampled_from([0.5, 1.0, 2.0])))


def _layer(draw: Any, n_out: int, n_in: int,
           degenerate: bool) -> tuple[list[list[float]], list[float]]:
    """Weights (n_out rows of n_in) and biases; degenerate layers get structured coincidences."""
    value = _SMALL if degenerate else _GENERIC
    W = [[draw(value) for _ in range(n_in)] for _ in range(n_out)]
    b = [draw(value) for _ in range(n_out)]
    if not degenerate:
        return W, b
    point = [draw(st.sampled_from([0.0, 0.5, -0.5])) for _ in range(n_in)]
    for i in range(n_out):
        how = draw(st.sampled_from(_PLANTS))
        j = draw(st.integers(0, n_out - 1))
        if how == "duplicate":
            W[i], b[i] = list(W[j]), b[j]
        elif how == "negate":
            W[i], b[i] = [-v for v in W[j]], -b[j]
        elif how == "zero":
            W[i] = [0.0] * n_in
        elif how == "dead":
            W[i], b[i] = [0.0] * n_in, -1.0
        elif how == "through":  # every "through" unit's hyperplane contains the same point
            b[i] = -sum(w * p for w, p in zip(W[i], point, strict=True))
        elif how == "parallel":
            c = draw(st.sampled_from([1.0, 2.0, -1.0, 0.5]))
            W[i] = [c * v for v in W[j]]
            b[i] = draw(_SMALL)
    return W, b


def _near_layer(draw: Any, n_out: int, n_in: int,
                at: list[float]) -> tuple[list[list[float]], list[float]]:
    """Weights (n_out rows of n_in) and biases ``m 2^e``; near-degenerate units are planted at
    ``at`` (the float64 image of the planted point at the layer's input): a hyperplane "through"
    it has the bias ``-fl(w . at)``, so it misses ``at`` by the rounding of that sum (the units
    so planted are concurrent up to about an ulp); "tilted" is an axis tilted by ``2^-60``
    through it; "parallel" another unit's row with one entry moved by an ulp, through it."""
    def value() -> float:
        return math.ldexp(draw(_MANTISSAS), draw(_EXPONENTS))

    W = [[value() for _ in range(n_in)] for _ in range(n_out)]
    b = [value() for _ in range(n_out)]
    for i in range(n_out):
        how = draw(st.sampled_from(_NEAR_PLANTS))
        if how == "keep":
            continue
        if how == "tilted":
            k, m = draw(st.integers(0, n_in - 1)), draw(st.integers(0, n_in - 1))
            W[i] = [0.0] * n_in
            W[i][k] = draw(st.sampled_from([1.0, -1.0]))
            if m != k:
                W[i][m] = draw(st.sampled_from([2.0**-60, -(2.0**-60)]))
        elif how == "parallel":
            j, m = draw(st.integers(0, n_out - 1)), draw(st.integers(0, n_in - 1))
            W[i] = list(W[j])
            W[i][m] = math.nextafter(W[i][m], draw(st.sampled_from([math.inf, -math.inf])))
        b[i] = -sum(w * a for w, a in zip(W[i], at, strict=True))
    return W, b


def _linear(W: list[list[float]], b: list[float], dtype: torch.dtype) -> nn.Linear:
    lin = nn.Linear(len(W[0]), len(W), dtype=dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(W, dtype=torch.float64))
        lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
    return lin


def _image(layers: list[nn.Module], point: list[float],
           input_shape: tuple[int, ...]) -> torch.Tensor:
    """The float64 output of ``layers`` at ``point`` (one sample, batch dimension kept)."""
    x = torch.tensor(point, dtype=torch.float64).reshape(1, *input_shape)
    with torch.no_grad():
        return copy.deepcopy(nn.Sequential(*layers)).double()(x)


@st.composite
def _networks(draw: Any, input_dim: int, depth: tuple[int, int], widths: tuple[int, int],
              activation: str, kind: str, dtype: torch.dtype, degenerate: bool,
              output_dim: int, near_degenerate: bool) -> nn.Module:
    n_hidden = draw(st.integers(*depth))
    layers: list[nn.Module] = []
    input_shape: tuple[int, ...] = (input_dim,)
    point = [draw(_NEAR_POINT) for _ in range(input_dim)] if near_degenerate else []

    def layer(n_out: int, n_in: int, at: Any = None) -> tuple[list[list[float]], list[float]]:
        """A layer's weights and biases; ``at``: its input at the planted point (default: the
        flat output of the layers so far)."""
        if not near_degenerate:
            return _layer(draw, n_out, n_in, degenerate)
        if at is None:
            at = _image(layers, point, input_shape).reshape(-1)
        return _near_layer(draw, n_out, n_in, at.tolist())

    if kind == "conv":
        input_shape = (1, input_dim)
        c, length = 1, input_dim
        for _ in range(n_hidden):
            c_out = draw(st.integers(*widths))
            k = draw(st.integers(1, min(2, length)))
            conv = nn.Conv1d(c, c_out, k, dtype=dtype)
            # near-degenerate units are planted on the first window
            at = None
            if near_degenerate:
                at = _image(layers, point, input_shape)[0, :, :k].reshape(-1)
            W, b = layer(c_out, c * k, at)
            assert conv.bias is not None  # Conv1d's default bias=True
            with torch.no_grad():
                conv.weight.copy_(torch.tensor(W, dtype=torch.float64).reshape(c_out, c, k))
                conv.bias.copy_(torch.tensor(b, dtype=torch.float64))
            layers += [conv, _activation(draw, activation)]
            c, length = c_out, length - k + 1
        layers.append(nn.Flatten())
        n = c * length
    elif kind == "residual":
        n = input_dim
        if n_hidden:
            w = draw(st.integers(*widths))
            layers += [_linear(*layer(w, n), dtype), _activation(draw, activation)]
            n = w
            for _ in range(n_hidden - 1):
                layers.append(_Residual(_linear(*layer(n, n), dtype),
                                        _activation(draw, activation)))
    else:
        n = input_dim
        for _ in range(n_hidden):
            w = draw(st.integers(*widths))
            layers += [_linear(*layer(w, n), dtype), _activation(draw, activation)]
            n = w
    layers.append(_linear(*layer(output_dim, n), dtype))
    net = nn.Sequential(*layers).eval()
    # torch types Module.__setattr__ for tensors and modules; other values are plain attributes
    net.input_shape = input_shape  # type: ignore[assignment]
    if near_degenerate:
        net.near_point = tuple(point)  # type: ignore[assignment]
    return net


def networks(*, input_dim: int = 2, depth: int | tuple[int, int] = (1, 2),
             widths: int | tuple[int, int] = (1, 6), activation: str = "relu", kind: str = "mlp",
             dtype: torch.dtype = torch.float64, degenerate: bool = False,
             output_dim: int = 1, near_degenerate: bool = False) -> SearchStrategy[nn.Module]:
    """Small piecewise-linear networks (``nn.Sequential``, eval mode) with dyadic parameters.

    ``depth``: number of hidden (piecewise) layers, an int or a (min, max) pair; ``widths``: hidden
    widths (conv: channels). ``kind="conv"`` takes inputs of shape ``(1, input_dim)`` (Conv1d
    layers, then Flatten and Linear); ``kind="residual"`` stacks blocks ``x + act(Linear(x))``.
    ``degenerate=True`` draws small-integer and half-integer weights and plants duplicated and
    negated units, zero rows, dead units, hyperplanes through one common point and parallel
    families. ``near_degenerate=True`` (not with ``degenerate``) makes coincidences that float64
    cannot resolve: weights ``m 2^e`` (``0 < |m| <= 8``, ``-60 <= e <= 10``) and, around a
    point ``net.near_point`` with coordinates ``fl(k / q)`` in ``[-1/2, 1/2]``, units whose
    hyperplanes pass through the point's image up to the rounding of their float64 bias (so the
    planted units are concurrent up to about an ulp, with regions as thin as that), axes tilted
    by ``2^-60``, and near-parallel copies (a weight one ulp off); with ``dtype=float32`` the
    parameters are rounded once more. A box around ``net.near_point`` (of any size, down to
    ``2^-40`` and below) holds the near-coincidences of the first layer. The per-sample input
    shape is ``net.input_shape``.

    >>> net = networks(input_dim=2, depth=1, widths=3, near_degenerate=True).example()
    >>> len(net.near_point)
    2

    >>> net = networks(input_dim=2, depth=1, widths=3).example()
    >>> net.input_shape
    (2,)
    """
    input_dim = _int(input_dim, "input_dim", 1, 64)
    depth_r = _range(depth, "depth", 0, 8)
    widths_r = _range(widths, "widths", 1, 64)
    output_dim = _int(output_dim, "output_dim", 1, 16)
    if activation not in ACTIVATIONS:
        raise InvalidArgument(f"activation={activation!r}; expected one of {ACTIVATIONS}")
    if kind not in KINDS:
        raise InvalidArgument(f"kind={kind!r}; expected one of {KINDS}")
    if dtype not in (torch.float32, torch.float64):
        raise InvalidArgument(f"dtype={dtype!r}; expected torch.float32 or torch.float64")
    if not isinstance(degenerate, bool):
        raise InvalidArgument(f"degenerate must be a bool, got {degenerate!r}")
    if not isinstance(near_degenerate, bool):
        raise InvalidArgument(f"near_degenerate must be a bool, got {near_degenerate!r}")
    if degenerate and near_degenerate:
        raise InvalidArgument("degenerate and near_degenerate draw different parameters; pick one")
    return _networks(input_dim, depth_r, widths_r, activation, kind, dtype, degenerate, output_dim,
                     near_degenerate)


# ----------------------------------------------------------------------------- domains and points

def _fractions(lo: Fraction, hi: Fraction, *, open_: bool = False) -> SearchStrategy[Fraction]:
    """Rationals in [lo, hi] (or (lo, hi)) with small denominators."""
    def build(den: int) -> SearchStrategy[Fraction]:
        a, b = math.ceil(lo * den), math.floor(hi * den)
        if open_:
            a, b = math.floor(lo * den) + 1, math.ceil(hi * den) - 1
        if a > b:
            return st.just((lo + hi) / 2)
        return st.integers(a, b).map(lambda k: Fraction(k, den))

    return st.sampled_from([1, 2, 3, 4, 8, 16]).flatmap(build)


def boxes(d: int, *, max_side: Any = 2, min_side: Any = Fraction(1, 4), center: Any = 0,
          max_offset: Any = 1) -> SearchStrategy[Box]:
    """Boxes in ``d`` dimensions with rational bounds: sides in [min_side, max_side], lower
    corners within ``max_offset`` of ``center - side / 2``.

    >>> boxes(2).example().dim
    2
    """
    d = _int(d, "d", 1, 64)
    hi, lo = _rational(max_side, "max_side"), _rational(min_side, "min_side")
    c, off = _rational(center, "center"), _rational(max_offset, "max_offset")
    if not 0 < lo <= hi:
        raise InvalidArgument(f"need 0 < min_side <= max_side, got min_side={lo}, max_side={hi}")
    if off < 0:
        raise InvalidArgument(f"max_offset must be >= 0, got {off}")

    @st.composite
    def build(draw: Any) -> Box:
        pairs = []
        for _ in range(d):
            side = draw(_fractions(lo, hi))
            start = c - side / 2 + draw(_fractions(-off, off))
            pairs.append((start, start + side))
        return Box(pairs)

    return build()


def domains(d: int, *, max_side: Any = 2) -> SearchStrategy[Domain]:
    """Bounded rational domains in ``d`` dimensions: boxes, and boxes cut by a halfspace through
    a point near their centre (a :class:`~exactrelu.domain.Polytope`).

    >>> domains(2).example().dim
    2
    """
    d = _int(d, "d", 1, 64)
    bx = boxes(d, max_side=max_side)

    @st.composite
    def cut(draw: Any) -> Domain:
        box = draw(bx)
        A, b = box.halfspaces()
        a = [Fraction(draw(st.integers(-2, 2))) for _ in range(d)]
        if all(v == 0 for v in a):
            a[0] = Fraction(1)
        mid = box.interior_point()
        slack = draw(st.sampled_from([Fraction(0), Fraction(1, 8), Fraction(1, 2)]))
        return Polytope([*A, a], [*b, sum(x * y for x, y in zip(a, mid, strict=True)) + slack])

    return st.one_of(bx, cut())


def rational_points(domain: Domain) -> SearchStrategy[tuple[Fraction, ...]]:
    """Rational points strictly inside a bounded ``domain`` (in its own coordinates).

    >>> p = rational_points(Box([(0, 1)])).example()
    >>> 0 < p[0] < 1
    True
    """
    if not isinstance(domain, Domain):
        raise InvalidArgument(f"domain must be an exactrelu Domain, got {type(domain).__name__}")
    if not domain.is_bounded:
        raise InvalidArgument(f"{domain!r} is unbounded; rational_points needs a bounded domain")
    if isinstance(domain, Box):
        sides = zip(domain.lower, domain.upper, strict=True)
        return st.tuples(*[_fractions(lo, hi, open_=True) for lo, hi in sides])
    center = domain.interior_point()
    verts = domain.vertices()

    @st.composite
    def build(draw: Any) -> tuple[Fraction, ...]:
        # A convex combination giving the interior point positive weight is strictly inside.
        weights = [Fraction(draw(st.integers(1, 8)))]
        weights += [Fraction(draw(st.integers(0, 8))) for _ in verts]
        total = sum(weights, Fraction(0))
        pts = [center, *verts]
        return tuple(sum((w * p[i] for w, p in zip(weights, pts, strict=True)), Fraction(0))
                     / total for i in range(domain.dim))

    return build()


def _input_shape_of(module: nn.Module) -> tuple[int, ...]:
    shape = getattr(module, "input_shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    for m in module.modules():
        if isinstance(m, nn.Linear):
            return (m.in_features,)
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            break
    raise InvalidArgument(f"cannot tell the input shape of {type(module).__name__}; "
                          "pass input_shape=(...)")


def inputs_for(module: nn.Module, *, batch: int | tuple[int, int] = (1, 8),
               input_shape: Sequence[int] | None = None,
               bound: float = 2.0) -> SearchStrategy[torch.Tensor]:
    """Input batches ``(n, *input_shape)`` for ``module``, in its dtype, entries in [-bound, bound]
    (half dyadic grid points, where ties and kinks happen, half arbitrary floats).

    The input shape is ``input_shape``, else ``module.input_shape`` (set by :func:`networks`), else
    the first Linear layer's ``in_features``.

    >>> net = nn.Sequential(nn.Linear(3, 1))
    >>> inputs_for(net, batch=2).example().shape
    torch.Size([2, 3])
    """
    if not isinstance(module, nn.Module):
        raise InvalidArgument(f"module must be a torch.nn.Module, got {type(module).__name__}")
    lo_n, hi_n = _range(batch, "batch", 1, 10_000)
    if input_shape is None:
        shape = _input_shape_of(module)
    else:
        try:
            shape = tuple(_int(s, "input_shape entry", 1) for s in input_shape)
        except TypeError:
            raise InvalidArgument(
                f"input_shape must be a sequence of ints, got {input_shape!r}") from None
        if not shape:
            raise InvalidArgument("input_shape must be non-empty")
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not 0 < bound < math.inf:
        raise InvalidArgument(f"bound must be a positive finite number, got {bound!r}")
    p = next(iter(module.parameters()), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float64
    size = math.prod(shape)
    k = int(bound * 64)
    value = st.one_of(st.integers(-k, k).map(lambda v: v / 64),
                      st.floats(-bound, bound, allow_nan=False, allow_infinity=False,
                                width=32 if dtype == torch.float32 else 64))

    @st.composite
    def build(draw: Any) -> torch.Tensor:
        n = draw(st.integers(lo_n, hi_n))
        vals = draw(st.lists(value, min_size=n * size, max_size=n * size))
        return torch.tensor(vals, dtype=dtype).reshape(n, *shape)

    return build()
