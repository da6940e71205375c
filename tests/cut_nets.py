"""Nets whose first layer is cut into cells (by a Dask run or by ``cells=``): random MLPs, first
layers whose cells meet along shared hyperplanes or carry pieces across cells, and nets on
unbounded domains (:data:`UNBOUNDED`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from exactrelu.domain import Polyhedron, RealSpace, Slice

from constructions import prisms, strips


def mlp(d: int, widths: list[int], seed: int, act: Any = nn.ReLU) -> nn.Sequential:
    """``d``-``widths``-2, PyTorch's initialisation after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip([d, *widths], widths, strict=False):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], 2)).double().eval()


def degenerate() -> nn.Sequential:
    """Duplicated and negated units in the first layer (their hyperplanes coincide), so cells
    of the first layer meet along hyperplanes several units share."""
    net = mlp(2, [4, 5], 7)
    with torch.no_grad():
        W, b = net[0].weight, net[0].bias
        W[1], b[1] = W[0], b[0]
        W[2], b[2] = -W[0], -b[0]
    return net


def through_one_point() -> nn.Sequential:
    """Every unit of the first layer has its hyperplane through the point (1/4, -1/2): on all
    of R^2 its cells are wedges with one common vertex."""
    net = mlp(2, [6, 5], 12)
    W = torch.tensor([[1, 0], [0, 1], [1, 1], [1, -2], [-3, 1], [2, 5]], dtype=torch.float64)
    with torch.no_grad():  # small dyadic numbers: the products are exact
        net[0].weight.copy_(W)
        net[0].bias.copy_(-(W @ torch.tensor([0.25, -0.5], dtype=torch.float64)))
    return net


def silent_unit() -> nn.Sequential:
    """The first unit of the first layer feeds nothing: its hyperplane cuts cells (and
    regions) but no map changes across it, so pieces cross between cells."""
    net = mlp(2, [6, 5], 8)
    with torch.no_grad():
        net[2].weight[:, 0] = 0
    return net


def conv_slice() -> tuple[nn.Module, Slice]:
    """A conv net on the plane through three images."""
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv2d(1, 3, 2), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4), nn.ReLU(),
                        nn.Linear(4, 1))
    x = torch.randn(3, 1, 3, 3, dtype=torch.float64)
    return net.double().eval(), Slice.plane(x[0], x[1], x[2])


def plane_over_r2() -> tuple[nn.Module, Slice]:
    """A 5-input MLP on the whole plane through three inputs (a slice over R^2)."""
    x = torch.tensor([[0.5, 0, -1, 0, 0.25], [1, 0, -1, 0.5, 0], [0.5, 1, 0, 0, 0.25]],
                     dtype=torch.float64)
    return mlp(5, [6, 5], 6), Slice.plane(x[0], x[1], x[2], bounds=RealSpace(2))


#: Nets on unbounded domains, cut into cells: all of R^2 and R^3, unbounded polyhedra, a slice
#: over R^2, and first layers whose cells meet along shared hyperplanes, at one point, or hold
#: lines (every region a strip or a prism, with no vertex).
UNBOUNDED: dict[str, Any] = {
    "r2": lambda: (mlp(2, [8, 8], 0), RealSpace(2)),
    "r3": lambda: (mlp(3, [5, 4], 1), RealSpace(3)),
    "half-plane": lambda: (mlp(2, [8, 6], 3), Polyhedron([[1, 1]], [0])),
    "wedge 3-D": lambda: (mlp(3, [5, 4], 4), Polyhedron([[1, 0, 0], [0, 1, -1]], [1, 0])),
    "slice over r2": plane_over_r2,
    "duplicated, negated": lambda: (degenerate(), RealSpace(2)),
    "through one point": lambda: (through_one_point(), RealSpace(2)),
    "strips (lines)": lambda: (strips(), RealSpace(2)),
    "prisms (lines)": lambda: (prisms(3), RealSpace(3)),
}
