"""Local complexity around training points of an MLP on scikit-learn's 8x8 digits, over training.

Local complexity (Humayun, Balestriero and Baraniuk, "Deep networks always grok and here is why",
2024) is the density of linear regions near data points; they track it over training and report
three phases: it falls, rises, then falls again as regions migrate away from the training points
towards the decision boundary. They estimate it by counting the neurons whose hyperplanes cut a
small cross-polytope around each point, layer by layer. Here it is exact: the number of
certified linear regions of the whole network in a neighbourhood of each point.

The neighbourhood is a 2-D slice: the square ``x + U t``, ``t`` in ``[-r, r]^2``, through the
training point ``x`` spanned by two fixed random orthonormal directions ``U`` of the 64-D input
space. A 64-D box around a point holds far too many regions to certify one by one (and a
polytope in 64-D is expensive to describe at all); a 2-D slice through the point is certified
exactly in milliseconds, and the same two directions at every point and every epoch make the
counts comparable (the slice is how SplineCam looks at networks too). A fixed random projection
to a low-dimensional input would certify full neighbourhoods, but changes the network studied.

The full run trains a 64-64-64-64-10 ReLU MLP (initialization doubled; AdamW, learning rate
1e-3, weight decay 0.1) on 1,000 digits for 1,500 epochs and certifies the slices through 16
training points every 25 epochs. It prints whether the mean count has the published shape after
its first fall (a rise, then a fall, each of at least 5%) and says so either way.

Run: python examples/local_complexity.py [--fast] [--out DIR]
"""

import argparse
import json
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure
from sklearn.datasets import load_digits
from torch import nn

from exactrelu.analysis import local_complexity

RADIUS = "1/2"  # half-width of the square slice, in input units (pixels scaled to [0, 1])


def digits(n_train: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels scaled to [0, 1] (k / 16: exact in float32), a fixed train/test split."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:n_train], perm[n_train:]
    return x[tr], y[tr], x[te], y[te]


def make_net(width: int, depth: int, init_scale: float) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    n = 64
    for _ in range(depth):
        layers += [nn.Linear(n, width), nn.ReLU()]
        n = width
    layers.append(nn.Linear(n, 10))
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(init_scale)
    return net


def directions() -> torch.Tensor:
    """Two fixed orthonormal directions of the input space (float64, taken exactly)."""
    u = torch.randn(2, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u[0] /= u[0].norm()
    u[1] -= (u[1] @ u[0]) * u[0]
    u[1] /= u[1].norm()
    return u


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (net(x).argmax(1) == y).float().mean().item()


def shape_of(epochs: list[int], means: list[float]) -> str:
    """Whether the mean count has the published shape after its first fall from initialization:
    a rise to a peak, then a fall (each of at least 5%; the mean over the points moves by a few
    percent between neighbouring checkpoints)."""
    if len(means) < 3:
        return "too few checkpoints to tell the shape"
    peak = max(range(1, len(means)), key=lambda k: (means[k], -k))
    low = min(range(1, peak + 1), key=lambda k: (means[k], k))
    late = min(range(peak, len(means)), key=lambda k: (means[k], k))
    rise = means[peak] / means[low] - 1
    fall = 1 - means[late] / means[peak]
    verdict = ("rises, then falls again: the published shape" if rise >= 0.05 and fall >= 0.05
               else "rises and does not fall again" if rise >= 0.05
               else "does not rise after its first fall")
    return (f"mean local complexity {verdict}: {means[0]:.2f} at initialization, "
            f"{means[low]:.2f} at epoch {epochs[low]}, peak {means[peak]:.2f} at epoch "
            f"{epochs[peak]} (+{100 * rise:.0f}%), {means[late]:.2f} at epoch {epochs[late]} "
            f"(-{100 * fall:.0f}%)")


def plot(log: dict, path: Path) -> None:
    """The mean count (and each point's) against the epoch, above the accuracies."""
    cfg = log["config"]
    fig = Figure(figsize=(7.0, 5.6), layout="constrained")
    ax, acc = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ep, later = log["epochs"], slice(1, None)  # initialization is far above the rest: in the title
    for k in range(cfg["points"]):
        ax.plot(ep[later], [c[k] for c in log["counts"]][later], color="0.85", lw=0.7)
    ax.plot(ep[later], log["mean"][later], "o-", color="tab:blue", ms=3, label="mean over points")
    ax.set_ylim(0, 1.05 * max([max(c) for c in log["counts"][later]] or [1]))
    ax.set_ylabel(f"certified regions in the slice\n[-{RADIUS}, {RADIUS}]^2 through each point")
    ax.legend(loc="upper right", fontsize=8)
    width = "-".join([str(cfg["width"])] * cfg["depth"])
    ax.set_title(f"64-{width}-10 ReLU MLP on 8x8 digits, {cfg['points']} training points "
                 f"(mean {log['mean'][0]:.1f} at initialization)", fontsize=9)
    acc.plot(ep, log["train_accuracy"], color="tab:green", lw=1, label="train")
    acc.plot(ep, log["test_accuracy"], color="tab:red", lw=1, label="test")
    acc.set_ylabel("accuracy")
    acc.set_xlabel("epoch")
    acc.set_ylim(0, 1.05)
    acc.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=150)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="a narrow net, a few epochs (seconds)")
    ap.add_argument("--out", default="out", help="output directory")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if args.fast:
        cfg = dict(width=16, depth=2, init=1.0, epochs=6, every=2, points=4, lr=1e-2, wd=0.0)
    else:
        cfg = dict(width=64, depth=3, init=2.0, epochs=1500, every=25, points=16, lr=1e-3, wd=0.1)
    xtr, ytr, xte, yte = digits(1000)
    net = make_net(cfg["width"], cfg["depth"], cfg["init"])
    anchors = xtr[:cfg["points"]].double()
    U = directions()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["wd"])
    batches = torch.Generator().manual_seed(2)
    log: dict = {"config": cfg, "radius": RADIUS, "epochs": [], "counts": [], "mean": [],
                 "train_accuracy": [], "test_accuracy": []}
    t0 = time.perf_counter()
    certify_s = 0.0
    for epoch in range(cfg["epochs"] + 1):
        if epoch % cfg["every"] == 0:
            lc = local_complexity(net, anchors, radius=RADIUS, slice=U)
            certify_s += lc.seconds
            mean = sum(lc.counts) / len(lc.counts)
            tr, te = accuracy(net, xtr, ytr), accuracy(net, xte, yte)
            for key, val in (("epochs", epoch), ("counts", lc.counts), ("mean", mean),
                             ("train_accuracy", tr), ("test_accuracy", te)):
                log[key].append(val)
            print(f"epoch {epoch:5d}: local complexity mean {mean:.2f} (min {min(lc.counts)}, "
                  f"max {max(lc.counts)}), train {tr:.3f}, test {te:.3f}", flush=True)
        if epoch < cfg["epochs"]:
            for idx in torch.randperm(len(xtr), generator=batches).split(100):
                opt.zero_grad()
                nn.functional.cross_entropy(net(xtr[idx]), ytr[idx]).backward()
                opt.step()
    total = time.perf_counter() - t0
    verdict = shape_of(log["epochs"], log["mean"])
    log["verdict"] = verdict
    (out / "local_complexity.json").write_text(json.dumps(log, indent=1))
    torch.save(net.state_dict(), out / "local_complexity_net.pt")
    plot(log, out / "local_complexity.png")
    print(verdict)
    print(f"{len(log['epochs'])} checkpoints x {cfg['points']} points certified in "
          f"{certify_s:.1f} s; {total:.1f} s in all")
    print(f"wrote {out / 'local_complexity.png'}, {out / 'local_complexity.json'}")


if __name__ == "__main__":
    main()
