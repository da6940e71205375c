"""Certified linear regions of a 2-16-16-3 MLP on [-1, 1]^2 (the original library's README demo).

A plain ``torch.nn.Sequential``, briefly trained on three generated classes (or not, with
``--epochs 0``); exactrelu counts its regions exactly, writes the certificate, re-checks it
independently and draws the region map and the predicted classes.

Run: python examples/regions_demo.py [--fast] [--out DIR]
"""

import argparse
import time
from pathlib import Path

import torch
from torch import nn

import exactrelu
from exactrelu.plot import plot_regions


def make_data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes on [-1, 1]^2: angle sectors of a swirl."""
    x = torch.rand(n, 2) * 2 - 1
    angle = torch.atan2(x[:, 1], x[:, 0]) + 2.0 * x.norm(dim=1)
    y = ((angle % (2 * torch.pi)) / (2 * torch.pi / 3)).long().clamp(max=2)
    return x, y


def trained_net(epochs: int) -> tuple[nn.Sequential, float]:
    """The 2-16-16-3 MLP after ``epochs`` full-batch Adam steps (seeded), and its accuracy."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = make_data(2000)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    with torch.no_grad():
        acc = (net(x).argmax(1) == y).float().mean().item()
    return net, acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="fewer training steps (seconds)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="training epochs (default 200, --fast 20; 0: the untrained net)")
    ap.add_argument("--out", default="out", help="output directory")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    epochs = args.epochs if args.epochs is not None else (20 if args.fast else 200)
    net, acc = trained_net(epochs)
    print(f"trained {epochs} epochs: training accuracy {acc:.3f}")

    t0 = time.perf_counter()
    cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=not args.fast)
    print(f"certified: {cert.num_regions} regions, {cert.num_pieces} pieces, "
          f"{cert.num_vertices} vertices in {time.perf_counter() - t0:.2f} s")
    cert.save(out / "regions_demo.cert.json")
    exactrelu.check(exactrelu.Certificate.load(out / "regions_demo.cert.json"), net)
    print("check: OK")
    plot_regions(cert, path=out / "regions.png")
    plot_regions(cert, color_by="class", path=out / "regions_classes.png")
    print(f"wrote {out / 'regions.png'}, {out / 'regions_classes.png'}, "
          f"{out / 'regions_demo.cert.json'}")


if __name__ == "__main__":
    main()
