"""Hand-built ReLU networks whose decision boundaries, level sets and sublevel sets are known
exactly (every weight is a small dyadic number, so the float64 parameters are the exact values),
and an exact segment intersection test for grid cross-checks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mlp(*layers: tuple[Sequence[Sequence[float]], Sequence[float]]) -> nn.Sequential:
    """Linear layers ``(W, b)`` with a ReLU between consecutive ones (float64, eval mode)."""
    mods: list[nn.Module] = []
    for i, (W, b) in enumerate(layers):
        lin = nn.Linear(len(W[0]), len(W), dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W, dtype=torch.float64))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
        mods.append(lin)
        if i < len(layers) - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()


def _abs_units(d: int) -> tuple[list[list[float]], list[float]]:
    """relu(x_i) and relu(-x_i) for every coordinate: their sum is |x_i|."""
    W = []
    for i in range(d):
        for s in (1.0, -1.0):
            W.append([s if j == i else 0.0 for j in range(d)])
    return W, [0.0] * (2 * d)


def l1_ball_classifier(d: int, r: float) -> nn.Sequential:
    """Outputs (0, r - |x|_1): class 1 exactly inside the L1 ball of radius r."""
    return mlp(_abs_units(d), ([[0.0] * (2 * d), [-1.0] * (2 * d)], [0.0, r]))


def linf_ball_classifier(d: int, r: float) -> nn.Sequential:
    """Outputs (0, r - max|x_i|) for d = 2 or 3: class 1 exactly inside the cube of half-side r.
    max(a, b) = a + relu(b - a), one layer per coordinate."""
    if d == 2:
        return mlp(_abs_units(2), ([[1, 1, 0, 0], [-1, -1, 1, 1]], [0, 0]),
                   ([[0, 0], [-1, -1]], [0, r]))
    return mlp(_abs_units(3),
               ([[1, 1, 0, 0, 0, 0], [-1, -1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]], [0, 0, 0]),
               ([[1, 1, 0], [-1, -1, 1]], [0, 0]),
               ([[0, 0], [-1, -1]], [0, r]))


def l1_shell(d: int, r: float) -> nn.Sequential:
    """One output, | |x|_1 - r |: its sublevel sets {<= w} (w < r) are L1 shells (an annulus in
    2-D, a hollow octahedron in 3-D)."""
    return mlp(_abs_units(d), ([[1.0] * (2 * d), [-1.0] * (2 * d)], [-r, r]), ([[1.0, 1.0]], [0.0]))


def diamond_tube() -> nn.Sequential:
    """One output in 3-D, | |x| + |y| - 1/2 | + |z|: its sublevel set {<= 1/4} is a solid torus (a
    tube of square section around the diamond |x| + |y| = 1/2 in the plane z = 0)."""
    return mlp(_abs_units(3),
               ([[1, 1, 1, 1, 0, 0], [-1, -1, -1, -1, 0, 0], [0, 0, 0, 0, 1, 1]], [-0.5, 0.5, 0.0]),
               ([[1.0, 1.0, 1.0]], [0.0]))


def ramp(offset: float, outputs: Sequence[float]) -> nn.Sequential:
    """2-D: ``outputs[j] * relu(x - offset)`` as output ``j`` (a kink along x = offset)."""
    return mlp(([[1.0, 0.0]], [-offset]), ([[w] for w in outputs], [0.0] * len(outputs)))


def three_classes() -> nn.Sequential:
    """2-D on [-1, 1]^2, outputs (0, relu(x - 1/4), y - 1/2) (y - 1/2 as relu(y + 2) - 5/2). Its
    decision boundary: y = 1/2 for x <= 1/4 (classes 0 | 2), y = x + 1/4 for 1/4 <= x <= 3/4
    (2 | 1) inside the two regions, and the piece x = 1/4, -1 <= y <= 1/2 of their common facet
    (0 | 1): total length 11/4 + sqrt(2)/2."""
    return mlp(([[1.0, 0.0], [0.0, 1.0]], [-0.25, 2.0]), ([[0, 0], [1, 0], [0, 1]], [0, 0, -2.5]))


def strips() -> nn.Sequential:
    """2-D: every unit a multiple of ``x + 2 y`` (duplicated, negated, parallel), so on all of
    R^2 every region is a strip or a half-plane (its line (1, -1/2), no vertex)."""
    return mlp(([[1, 2], [-2, -4], [1, 2]], [0, 1, -3]), ([[1, -1, 2]], [0]))


def prisms(d: int) -> nn.Sequential:
    """3-D or 4-D: units that ignore the last coordinate, so on all of R^d every region holds
    its line (prisms over an arrangement one dimension down)."""
    if d == 3:
        return mlp(([[1, 0, 0], [0, 1, 0], [1, 1, 0]], [0, 0, -1]), ([[1, 1, -1]], [0]))
    return mlp(([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0]], [0, 0, -1]), ([[1, 1, -1]], [0]))


def segments_meet(p: tuple, q: tuple, u: tuple, v: tuple) -> bool:
    """Whether the closed segments [p, q] and [u, v] of the plane meet (exact orientations)."""
    def orient(a: tuple, b: tuple, c: tuple) -> int:
        x = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return (x > 0) - (x < 0)

    def within(a: tuple, b: tuple, c: tuple) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) \
            and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    o1, o2, o3, o4 = orient(p, q, u), orient(p, q, v), orient(u, v, p), orient(u, v, q)
    if o1 != o2 and o3 != o4 and 0 not in (o1, o2, o3, o4):
        return True
    return ((o1 == 0 and within(p, q, u)) or (o2 == 0 and within(p, q, v))
            or (o3 == 0 and within(u, v, p))
            or (o4 == 0 and within(u, v, q)))
