"""The certified linear regions of a 3-8-8 MLP on [-1, 1]^3, drawn in 3-D.

Every region is drawn as its facets: exact polygons through the certified vertices, one colour
per region. Left, the complex exploded apart (each cell moved away from the centre); right, cut
open: only the regions lying where x_1 <= 1/4.

Run: python examples/regions_3d.py [--fast] [--out DIR]
"""

import argparse
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import nn

import exactrelu
from exactrelu.plot import plot_regions_3d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="a 3-4-4 net (seconds)")
    ap.add_argument("--out", default="out", help="output directory")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    width = 4 if args.fast else 8
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                        nn.Linear(width, 2))
    cert = exactrelu.verify(net, [(-1, 1)] * 3, progress=False)
    print(f"certified: {cert.num_regions} regions, {cert.num_pieces} pieces, "
          f"{cert.num_vertices} vertices")
    fig = Figure(figsize=(12.0, 6.0), layout="constrained")
    left = fig.add_subplot(1, 2, 1, projection="3d")
    right = fig.add_subplot(1, 2, 2, projection="3d")
    plot_regions_3d(cert, explode=0.35, ax=left, title=f"{cert.num_regions} regions, exploded")
    plot_regions_3d(cert, cut=(0, "1/4"), ax=right, title="cut open at $x_1 = 1/4$")
    path = out / "regions_3d.png"
    fig.savefig(path, dpi=90)
    print(f"picture: {path}")


if __name__ == "__main__":
    main()
