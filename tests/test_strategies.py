"""exactrelu.strategies: public surface, argument validation, and what the strategies generate."""

from __future__ import annotations

import inspect
import itertools
from fractions import Fraction

import pytest
import torch
from hypothesis import Phase, find, given, settings, strategies as st

import exactrelu
from exactrelu import strategies
from exactrelu.strategies import (
    InvalidArgument,
    boxes,
    domains,
    inputs_for,
    networks,
    rational_points,
)


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name, obj in vars(strategies).items()
              if not name.startswith("_")
              and getattr(obj, "__module__", None) == strategies.__name__
              and (inspect.isfunction(obj) or inspect.isclass(obj))}
    assert set(strategies.__all__) == public


def test_invalid_argument_is_an_exactrelu_error() -> None:
    assert issubclass(InvalidArgument, exactrelu.InvalidInputError)
    assert issubclass(InvalidArgument, exactrelu.ExactReluError)


BAD = [
    (networks, dict(input_dim=0)),
    (networks, dict(input_dim=True)),
    (networks, dict(input_dim=2.0)),
    (networks, dict(depth=-1)),
    (networks, dict(depth=(2, 1))),
    (networks, dict(depth=(1, 2, 3))),
    (networks, dict(widths=0)),
    (networks, dict(widths=(3, 2))),
    (networks, dict(widths="wide")),
    (networks, dict(activation="tanh")),
    (networks, dict(kind="transformer")),
    (networks, dict(dtype=torch.int64)),
    (networks, dict(degenerate="yes")),
    (networks, dict(output_dim=0)),
    (networks, dict(near_degenerate=1)),
    (networks, dict(near_degenerate=True, degenerate=True)),
    (boxes, dict(d=0)),
    (boxes, dict(d=2, max_side=0)),
    (boxes, dict(d=2, max_side=1, min_side=2)),
    (boxes, dict(d=2, max_side=float("nan"))),
    (boxes, dict(d=2, max_side="big")),
    (boxes, dict(d=2, max_offset=-1)),
    (domains, dict(d=-1)),
    (domains, dict(d="2")),
    (rational_points, dict(domain=[(0, 1)])),
    (rational_points, dict(domain=exactrelu.RealSpace(2))),
    (inputs_for, dict(module="net")),
    (inputs_for, dict(module=torch.nn.Linear(2, 1), batch=0)),
    (inputs_for, dict(module=torch.nn.Linear(2, 1), batch=(3, 1))),
    (inputs_for, dict(module=torch.nn.Linear(2, 1), bound=-1.0)),
    (inputs_for, dict(module=torch.nn.Linear(2, 1), input_shape=(0,))),
    (inputs_for, dict(module=torch.nn.ReLU())),
]


@pytest.mark.parametrize("fn, kwargs", BAD, ids=[f"{f.__name__}-{k}" for f, k in BAD])
def test_invalid_arguments_raise(fn, kwargs) -> None:
    with pytest.raises(InvalidArgument):
        fn(**kwargs)


def test_options_are_keyword_only() -> None:
    for fn in (networks, boxes, domains, inputs_for):
        params = inspect.signature(fn).parameters.values()
        positional = [p.name for p in params
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert len(positional) <= 1, fn.__name__


@settings(max_examples=15)
@given(st.data(), st.sampled_from(["mlp", "conv", "residual"]),
       st.sampled_from(["relu", "leaky_relu", "hardtanh", "mixed"]),
       st.sampled_from(["plain", "degenerate", "near_degenerate"]),
       st.sampled_from([torch.float32, torch.float64]))
def test_generated_nets_run_forward(data, kind, activation, mode, dtype) -> None:
    net = data.draw(networks(input_dim=2, kind=kind, activation=activation, dtype=dtype,
                             degenerate=mode == "degenerate",
                             near_degenerate=mode == "near_degenerate"))
    x = data.draw(inputs_for(net, batch=(1, 4)))
    assert x.dtype == dtype and tuple(x.shape[1:]) == net.input_shape
    y = net(x)
    assert y.shape == (x.shape[0], 1) and torch.isfinite(y).all()
    prog = exactrelu.capture(net, net.input_shape)
    assert torch.allclose(prog.forward(x.double()), net.double()(x.double()), rtol=1e-9, atol=1e-12)


@settings(max_examples=15)
@given(st.integers(1, 3).flatmap(lambda d: st.tuples(st.just(d), domains(d))), st.data())
def test_rational_points_are_strictly_inside(dd, data) -> None:
    d, dom = dd
    assert dom.dim == d and dom.is_bounded and dom.volume() > 0
    p = data.draw(rational_points(dom))
    assert all(isinstance(v, Fraction) for v in p)
    A, b = dom.halfspaces()
    assert all(sum(a * x for a, x in zip(row, p, strict=True)) < bi
               for row, bi in zip(A, b, strict=True))


@settings(max_examples=15)
@given(boxes(3, max_side=Fraction(1, 2), min_side=Fraction(1, 8)))
def test_box_sides_respect_bounds(box) -> None:
    assert all(Fraction(1, 8) <= hi - lo <= Fraction(1, 2)
               for lo, hi in zip(box.lower, box.upper, strict=True))


def _first_layer(net: torch.nn.Module) -> tuple[list[list[Fraction]], list[Fraction]]:
    lin = net[0]
    return ([[Fraction(v) for v in r] for r in lin.weight.double().tolist()],
            [Fraction(v) for v in lin.bias.double().tolist()])


def _crossing(w1: list, b1: Fraction, w2: list, b2: Fraction) -> tuple[Fraction, Fraction] | None:
    det = w1[0] * w2[1] - w1[1] * w2[0]
    if det == 0:
        return None
    return ((-b1 * w2[1] + b2 * w1[1]) / det, (-w1[0] * b2 + w2[0] * b1) / det)


def _tiny_triangle(net: torch.nn.Module) -> bool:
    """Three first-layer lines in general position whose three crossings lie within 2^-40 of the
    planted point (a triangle below float64's resolution there); exact."""
    W, b = _first_layer(net)
    p = [Fraction(v) for v in net.near_point]
    for i, j, k in itertools.combinations(range(len(W)), 3):
        pts = [_crossing(W[x], b[x], W[y], b[y]) for x, y in ((i, j), (i, k), (j, k))]
        if None in pts or len(set(pts)) < 3:
            continue
        if all(abs(q[0] - p[0]) + abs(q[1] - p[1]) < Fraction(1, 2**40) for q in pts):
            return True
    return False


def _tilted(net: torch.nn.Module) -> bool:
    """A first-layer row that is an axis tilted by 2^-60."""
    W, _ = _first_layer(net)
    return any(sorted(abs(v) for v in r) == [Fraction(1, 2**60), 1] for r in W)


@pytest.mark.parametrize("found", [_tiny_triangle, _tilted], ids=["tiny-triangle", "tilted"])
def test_near_degenerate_nets_plant_what_they_promise(found) -> None:
    net = find(networks(input_dim=2, depth=1, widths=(3, 5), near_degenerate=True), found,
               settings=settings(max_examples=500, database=None, derandomize=True,
                                 phases=[Phase.generate]))
    assert len(net.near_point) == 2 and all(abs(v) <= 0.5 for v in net.near_point)
