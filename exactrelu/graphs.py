"""Weight/bias graphs: the local affine map of a network at given inputs, in float and exactly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

import torch
from torch import nn

from . import _exact
from ._exact import ExactMap
from .capture import Program, capture
from .errors import InvalidInputError
from .rules import FloatMap

__all__ = ["AffineMaps", "ExactAffineMaps", "affine_maps", "exact_affine_maps", "exact_forward",
           "as_program"]


class AffineMaps(NamedTuple):
    """``net(x) == (weight * x).sum(input dims) + bias`` for every sample."""

    weight: torch.Tensor  # (N, *out_shape, *in_shape)
    bias: torch.Tensor  # (N, *out_shape)
    pattern: list[torch.Tensor]  # one int64 state tensor (N, *shape) per piecewise op


@dataclass(frozen=True)
class ExactAffineMaps:
    """Exact affine maps for one activation pattern, in input coordinates ``t``.

    ``output``: the network's output map; ``switching[j]``: the switching functions of piecewise
    op ``j`` (for ReLU: the pre-activations). Each is an :class:`~exactrelu._exact.ExactMap`.
    """

    output: ExactMap
    switching: list[ExactMap]


def as_program(net: nn.Module | Program, input_shape: Sequence[int] | None) -> Program:
    if isinstance(net, Program):
        return net
    if input_shape is None:
        raise InvalidInputError("pass input_shape (the shape of one sample, without the batch "
                                "dimension)")
    return capture(net, input_shape)


def _device_of(net: nn.Module) -> torch.device | None:
    for p in net.parameters():
        return p.device
    for b in net.buffers():
        return b.device
    return None


def affine_maps(net: nn.Module | Program, x: torch.Tensor) -> AffineMaps:
    """Weight and bias graphs of ``net`` at the batch ``x`` (shape (N, *input_shape)).

    Runs under ``no_grad`` on the model's device, in ``x``'s floating dtype, and leaves the model
    untouched.

    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> x = torch.randn(4, 2)
    >>> g = affine_maps(net, x)
    >>> torch.allclose((g.weight * x[:, None]).sum(-1) + g.bias, net(x))
    True
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise InvalidInputError("x must be a tensor of shape (N, *input_shape) with a batch "
                                "dimension")
    if not x.is_floating_point():
        raise InvalidInputError(f"x must be floating point, got {x.dtype}")
    if not torch.isfinite(x).all():
        raise InvalidInputError("x contains NaN or inf")
    try:
        prog = as_program(net, tuple(x.shape[1:]))
    except InvalidInputError as exc:
        raise InvalidInputError(f"x of shape {tuple(x.shape)} is read as a batch of {x.shape[0]} "
                                f"samples of shape {tuple(x.shape[1:])}; x must be (N, "
                                f"*input_shape), batch dimension first. {exc}") from None
    if tuple(x.shape[1:]) != prog.input_shape:
        raise InvalidInputError(f"x has per-sample shape {tuple(x.shape[1:])}, the program takes "
                                f"{prog.input_shape}")
    device = _device_of(prog.net) or x.device
    x = x.detach().to(device)
    n, d = x.shape[0], prog.in_dim
    with torch.no_grad():
        values = FloatMap(x.new_zeros((n, 0, *prog.input_shape)), x)
        _, pattern = prog.float_run(values)
        eye = torch.eye(d, dtype=x.dtype, device=device).reshape(1, d, *prog.input_shape) \
            .expand(n, -1, *prog.input_shape)
        m0 = FloatMap(eye, torch.zeros_like(x))
        out, _ = prog.float_run(m0, states=pattern)
    w = out.W  # (N, d, *out_shape)
    out_dims = w.dim() - 2
    weight = w.movedim(1, -1).reshape(n, *prog.output_shape, *prog.input_shape)
    del out_dims
    return AffineMaps(weight, out.b, pattern)


def exact_affine_maps(net: nn.Module | Program, pattern: Sequence[torch.Tensor],
                      input_shape: Sequence[int] | None = None,
                      input_map: tuple[Sequence[Sequence[Any]], Sequence[Any]] | None = None,
                      ) -> ExactAffineMaps:
    """Exact rational maps of every switching function and of the output for one ``pattern``.

    ``pattern``: one state tensor per piecewise op (one sample, no batch dimension; a batch of
    one is accepted). Coordinates are the raw input entries, or ``t`` with ``x = M t + c`` when
    ``input_map=(M, c)`` (e.g. a slice).
    """
    prog = as_program(net, input_shape)
    states = [p[0] if p.dim() == len(nd.out_shape) + 1 and p.shape[0] == 1
              and tuple(p.shape[1:]) == nd.out_shape else p
              for p, nd in zip(pattern, prog.piecewise_nodes(), strict=False)]
    for s, nd in zip(states, prog.piecewise_nodes(), strict=False):
        if tuple(s.shape) != nd.out_shape:
            raise InvalidInputError(f"pattern for {nd.name} has shape {tuple(s.shape)}, expected "
                                    f"{nd.out_shape}")
    if len(states) != prog.num_piecewise:
        raise InvalidInputError(f"pattern has {len(states)} entries, the network has "
                                f"{prog.num_piecewise} piecewise ops")
    if input_map is None:
        m0 = _exact.identity_map(prog.in_dim, prog.input_shape)
    else:
        m0 = _exact.input_map(input_map[0], input_map[1], prog.input_shape)
    collect: list[ExactMap] = []
    out, _ = prog.exact_run(m0, states, collect=collect)
    return ExactAffineMaps(out, collect)


def exact_forward(net: nn.Module | Program, x: Sequence[Any],
                  input_shape: Sequence[int] | None = None) -> list[Fraction]:
    """Exact forward pass at one rational input ``x`` (flat, or a tensor: its floats taken exactly).

    >>> net = nn.Sequential(nn.Linear(1, 1))
    >>> with torch.no_grad(): _ = net[0].weight.fill_(0.5), net[0].bias.fill_(0.25)
    >>> exact_forward(net, [Fraction(1, 3)], (1,))
    [Fraction(5, 12)]
    """
    if isinstance(x, torch.Tensor):
        input_shape = input_shape or tuple(x.shape)
        x = [Fraction(v) for v in x.detach().to("cpu", torch.float64).reshape(-1).tolist()]
    prog = as_program(net, input_shape)
    if len(x) != prog.in_dim:
        raise InvalidInputError(f"x has {len(x)} entries, the network takes {prog.in_dim}")
    return prog.exact_forward(list(x))
