"""Certified region counts of a small 2-D classifier across training epochs (generated two moons).

After every few epochs the network is verified on [-2, 3] x [-1.5, 2]; the exact counts are
plotted against the epoch, next to the final region map with its decision boundary.

Run: python examples/training_dynamics.py [--fast] [--out DIR]
"""

import argparse
import math
from pathlib import Path

import torch
from torch import nn

import exactrelu
from exactrelu.plot import plot_counts, plot_regions

BOUNDS = [(-2, 3), (-1.5, 2)]


def two_moons(n: int, noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.rand(n) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    y = (torch.rand(n) < 0.5).long()
    x = torch.where(y[:, None] == 0, upper, lower) + noise * torch.randn(n, 2)
    return x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="a narrow net and a few epochs (seconds)")
    ap.add_argument("--out", default="out", help="output directory")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(0)
    width, epochs, every, n = (6, 6, 2, 256) if args.fast else (16, 300, 25, 512)
    net = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                        nn.Linear(width, 2))
    x, y = two_moons(n)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    marks, counts = [], []
    for epoch in range(epochs + 1):
        if epoch % every == 0:
            cert = exactrelu.verify(net, BOUNDS, progress=False)
            with torch.no_grad():
                acc = (net(x).argmax(1) == y).float().mean().item()
            marks.append(epoch)
            counts.append(cert.num_regions)
            print(f"epoch {epoch:4d}: {cert.num_regions} certified regions, "
                  f"accuracy {acc:.3f}")
        if epoch < epochs:
            for xb, yb in zip(x.split(64), y.split(64), strict=True):
                opt.zero_grad()
                nn.functional.cross_entropy(net(xb), yb).backward()
                opt.step()
    plot_counts(marks, counts, path=out / "training_counts.png",
                title=f"2-{width}-{width}-2 ReLU net on two moons")
    fig = plot_regions(cert, color_by="class")
    ax = fig.axes[0]
    colors = ["tab:blue" if v == 0 else "tab:orange" for v in y.tolist()]
    ax.scatter(x[:, 0], x[:, 1], c=colors, s=4, edgecolors="black", linewidths=0.2)
    fig.savefig(out / "training_final_regions.png", dpi=150)
    print(f"counts: {counts}")
    print(f"wrote {out / 'training_counts.png'}, {out / 'training_final_regions.png'}")


if __name__ == "__main__":
    main()
