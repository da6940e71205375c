"""Linear regions and the decision boundary of a small conv net on the plane through three inputs.

The net (Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, AvgPool2d, Flatten, Linear) takes 1x12x12 images
and has three outputs; its last layer is fitted (least squares) so that the three inputs x0, x1,
x2 get classes 0, 1 and 2. ``Slice.plane(x0, x1, x2)`` restricts it to the triangle x0, x1, x2,
where its regions (about 4,800) and its decision boundary are certified exactly, re-checked
and drawn, coloured by class; this takes minutes. ``--fast`` zooms into a small box of plane
coordinates around t = (0.64, 0.3) (``bounds=``), where the boundary between classes 0 and 2
passes: a few dozen regions of the same net, in seconds.

Run: python examples/slice_demo.py [--fast] [--out DIR]
"""

import argparse
from pathlib import Path

import torch
from torch import nn

import exactrelu
from exactrelu.domain import Slice
from exactrelu.plot import plot_regions


def blob(cx: float, cy: float, size: int = 12) -> torch.Tensor:
    """A generated input: a Gaussian blob centred at (cx, cy) plus a little noise."""
    r = torch.arange(size, dtype=torch.float32)
    img = 2 * torch.exp(-((r[:, None] - cy) ** 2 + (r[None, :] - cx) ** 2) / 8.0) - 0.5
    return (img + 0.05 * torch.randn(size, size))[None]


def fit_last_layer(net: nn.Sequential, xs: torch.Tensor) -> None:
    """Set the last Linear layer to the least-squares (minimum norm) fit of one-hot targets on
    ``xs``, so that ``xs[i]`` gets class ``i``."""
    with torch.no_grad():
        feats = net[:-1](xs)
        A = torch.cat([feats, torch.ones(len(xs), 1)], dim=1)
        sol = torch.linalg.pinv(A) @ torch.eye(len(xs))
        net[-1].weight.copy_(sol[:-1].T)
        net[-1].bias.copy_(sol[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true",
                    help="a small box of the plane around t = (0.2, 0.2) (seconds)")
    ap.add_argument("--out", default="out", help="output directory")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(0)
    c1, c2 = 2, 3
    net = nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 12x12 -> 6x6
        nn.Conv2d(c1, c2, 3), nn.ReLU(), nn.AvgPool2d(2),  # 6x6 -> 4x4 -> 2x2
        nn.Flatten(), nn.Linear(c2 * 4, 3),
    ).eval()
    x0, x1, x2 = blob(3, 3), blob(8, 4), blob(5, 9)
    fit_last_layer(net, torch.stack([x0, x1, x2]))
    bounds = [(0.6, 0.68), (0.26, 0.34)] if args.fast else None  # None: the triangle x0, x1, x2
    plane = Slice.plane(x0, x1, x2, bounds=bounds)
    cert = exactrelu.verify(net, plane, progress=not args.fast)
    print(f"certified on the plane through three inputs: {cert.num_regions} regions, "
          f"{cert.num_pieces} pieces, {cert.num_vertices} vertices "
          f"({cert.stats['seconds']['total']:.2f} s)")
    exactrelu.check(cert, net)
    boundary = exactrelu.check_boundary(exactrelu.decision_boundary(cert), cert, net,
                                        certificate_checked=True)
    length = boundary.measure()  # exact: a sum of rational multiples of square roots
    print(f"check: OK; decision boundary: {len(boundary)} segments of total length "
          f"{float(length):.6f} ({len(length.terms)} exact square-root terms), checked")
    cert.save(out / "slice.cert.json")
    title = (f"{cert.num_regions} regions and the decision boundary (red) on the plane\n"
             "x0 + t1 (x1-x0) + t2 (x2-x0), coloured by class")
    # red: where the predicted class changes
    fig = plot_regions(cert, color_by="class", title=title)
    ax = fig.axes[0]
    if bounds is None:
        for (t1, t2), name in (((0, 0), "x0"), ((1, 0), "x1"), ((0, 1), "x2")):
            ax.plot([t1], [t2], "k*", markersize=10, clip_on=False)
            ax.annotate(name, (t1, t2), textcoords="offset points", xytext=(8, -4))
    fig.savefig(out / "slice_regions.png", dpi=150)
    print(f"wrote {out / 'slice_regions.png'}, {out / 'slice.cert.json'}")


if __name__ == "__main__":
    main()
