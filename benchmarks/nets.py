"""The issue's reference networks: plain MLPs ``Linear(d, w1)-ReLU-...-Linear(wk, 2)``.

Each net is built right after its own ``torch.manual_seed(5)`` with PyTorch's default init, so
each is reproducible by itself; the domain is ``[-1, 1]^d``.

>>> name, net, bounds = reference_nets()[0]
>>> name, len(bounds)
('2-16-16', 2)
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

__all__ = ["REFERENCE", "mlp", "reference_nets"]

REFERENCE: list[tuple[int, ...]] = [
    (2, 16, 16), (2, 16, 16, 16), (2, 32, 32), (2, 32, 32, 32), (3, 8, 8),
    (2, 64, 64, 64), (2, 128, 128, 128), (4, 16, 16, 16),
]

def mlp(widths: tuple[int, ...], seed: int = 5, out: int = 2) -> nn.Sequential:
    """``Linear(w0, w1)-ReLU-...-Linear(wk, out)`` built after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], out))
    return nn.Sequential(*layers).eval()


def reference_nets() -> list[tuple[str, nn.Sequential, list[tuple[int, int]]]]:
    """(name, net, bounds) for every reference net, in the issue's order."""
    return [("-".join(map(str, w)), mlp(w), [(-1, 1)] * w[0]) for w in REFERENCE]
