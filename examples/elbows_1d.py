"""One-hidden-layer ReLU nets on a 1-D regression problem, with their kinks certified exactly.

After the EECS182 notes ("Visualize ReLU", HW0 P6): widths 10/20/40, elbows initialised inside
[0, 1] (b = -elbow * w), SGD on the output layer only vs on all layers, train/test error curves,
elbow positions over training, and ridge regression on the hidden features in closed form
compared with SGD. Every function plot marks the kinks certified by
``exactrelu.verify(net, [(0, 1)])``; a net with H hidden units has at most H kinks.

Regions and kinks can differ by more than one: a hidden unit whose elbow lies inside [0, 1]
splits a region, but it is a kink only if its output weight is non-zero. Ridge regression gives
an exactly zero weight to a unit that is off on every training point (its elbow lies beyond the
data), so the two regions around its elbow carry the same affine map: one piece. In 1-D, kinks =
pieces - 1 whenever no affine map repeats.

Run: python examples/elbows_1d.py [--fast] [--steps N] [--out DIR]
"""

import argparse
import copy
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

import exactrelu
from exactrelu.plot import kinks, plot_function_1d

WIDTHS = (10, 20, 40)
LR_OUT, LR_ALL = 0.2, 0.02


def truth(x: np.ndarray) -> np.ndarray:
    """The ground truth: a sine plus two kinks."""
    return np.sin(2 * np.pi * x) + 0.8 * np.abs(x - 0.6) - 0.6 * (x > 0.3) * (x - 0.3)


def make_data(n: int, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X = np.sort(rng.random(n))
    y = truth(X) + 0.1 * rng.standard_normal(n)
    X_test = np.linspace(0, 1, 500)
    return X[:, None], y, X_test[:, None], truth(X_test)


def make_net(width: int, rng: np.random.Generator) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, 1))
    elbows = np.sort(rng.random(width))
    with torch.no_grad():
        net[0].bias.copy_(torch.from_numpy(-elbows).float() * net[0].weight.ravel())
    return net


def train(net: nn.Module, params: list, lr: float, X: np.ndarray, y: np.ndarray, X_test: np.ndarray,
          y_test: np.ndarray, steps: int, save_every: int, rng: np.random.Generator) -> dict:
    """Minibatch SGD (a fifth of the points per step), as in the notes' train_network."""
    loss = nn.MSELoss()
    opt = torch.optim.SGD(params, lr=lr)
    Xt, yt = torch.from_numpy(X).float(), torch.from_numpy(y).float()[:, None]
    Xv, yv = torch.from_numpy(X_test).float(), torch.from_numpy(y_test).float()[:, None]
    hist: dict = {"step": [], "train": [], "test": [], "elbows": [], "states": {}}
    for s in range(steps):
        idx = torch.from_numpy(rng.choice(len(y), max(1, len(y) // 5)))
        step_loss = loss(net(Xt[idx]), yt[idx])
        opt.zero_grad()
        step_loss.backward()
        opt.step()
        if (s + 1) % save_every == 0 or s == 0:
            with torch.no_grad():
                hist["step"].append(s + 1)
                hist["train"].append(loss(net(Xt), yt).item())
                hist["test"].append(loss(net(Xv), yv).item())
                w, b = net[0].weight.ravel(), net[0].bias
                hist["elbows"].append((-b / w).numpy().copy())
                hist["states"][s + 1] = copy.deepcopy(net.state_dict())
    return hist


def certified_kinks(net: nn.Module) -> tuple[exactrelu.Certificate, list]:
    """The certificate on [0, 1] and its exact kinks (where the slope changes)."""
    cert = exactrelu.verify(net, [(0, 1)], progress=False)
    return cert, kinks(cert)


def ridge_output_layer(net: nn.Sequential, X: np.ndarray, y: np.ndarray, lam: float = 1e-5) -> None:
    """Closed-form ridge regression of y on [relu(W1 x + b1), 1]; sets the output layer."""
    with torch.no_grad():
        H = torch.relu(net[0](torch.from_numpy(X).float())).double().numpy()
    F = np.hstack([H, np.ones((len(H), 1))])
    coeffs = np.linalg.solve(F.T @ F + lam * np.eye(F.shape[1]), F.T @ y)
    with torch.no_grad():
        net[2].weight.copy_(torch.from_numpy(coeffs[:-1][None, :]).float())
        net[2].bias.copy_(torch.tensor([coeffs[-1]], dtype=torch.float32))


def test_mse(net: nn.Module, X_test: np.ndarray, y_test: np.ndarray) -> float:
    with torch.no_grad():
        return float(np.mean((net(torch.from_numpy(X_test).float()).numpy().ravel() - y_test) ** 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="width 10 only, 100 SGD steps (seconds)")
    ap.add_argument("--steps", type=int, default=None,
                    help="SGD steps per run (default 3000, --fast 100)")
    ap.add_argument("--out", default="out", help="output directory")
    args = ap.parse_args()
    out = Path(args.out) / "elbows_1d"
    out.mkdir(parents=True, exist_ok=True)
    steps = args.steps or (100 if args.fast else 3000)
    save_every = max(1, steps // 30)
    widths, dpi = ((10,), 70) if args.fast else (WIDTHS, 110)

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X, y, X_test, y_test = make_data(50, rng)
    data, gt = (X.ravel(), y), (X_test.ravel(), y_test)

    print(f"{'width':>5} {'training':>14} {'test MSE':>9} {'regions':>7} {'pieces':>6} "
          f"{'kinks':>5}")
    for width in widths:
        net = make_net(width, rng)
        init = copy.deepcopy(net.state_dict())
        fig = Figure(figsize=(18, 5), layout="constrained")
        axes = fig.subplots(1, 4)
        results = {}
        for col, (mode, lr) in enumerate((("the output layer", LR_OUT), ("all layers", LR_ALL))):
            net.load_state_dict(init)
            params = list((net[2] if mode == "the output layer" else net).parameters())
            hist = train(net, params, lr, X, y, X_test, y_test, steps, save_every, rng)
            cert, ks = certified_kinks(net)
            assert len(ks) <= width, "a 1-hidden-layer net has at most one kink per hidden unit"
            results[mode] = (copy.deepcopy(net.state_dict()), hist)
            print(f"{width:>5} {mode.replace('the ', ''):>14} "
                  f"{test_mse(net, X_test, y_test):>9.4f} {cert.num_regions:>7} "
                  f"{cert.num_pieces:>6} {len(ks):>5}")
            plot_function_1d(cert, net=net, data=data, truth=gt, ax=axes[col], ylim=(-2.5, 2.5),
                             title=f"SGD on {mode}: {len(ks)} certified kinks")
            ax = axes[2]
            ax.semilogy(hist["step"], hist["train"], "-", label=f"train ({mode})")
            ax.semilogy(hist["step"], hist["test"], "--", label=f"test ({mode})")
        axes[2].set_xlabel("SGD step")
        axes[2].set_ylabel("MSE")
        axes[2].legend(fontsize="small")
        axes[2].set_title("train / test error")

        # elbows over training (all layers), ending at the certified kinks of the final net
        state, hist = results["all layers"]
        net.load_state_dict(state)
        cert, ks = certified_kinks(net)
        elb = np.array(hist["elbows"])
        ax = axes[3]
        ax.plot(hist["step"], np.clip(elb, -0.25, 1.25), "-", color="grey", linewidth=0.8)
        ax.scatter([hist["step"][-1]] * len(ks), [float(k) for k in ks], marker="o",
                   facecolors="white", edgecolors="black", zorder=3,
                   label=f"certified kinks at the end ({len(ks)})")
        ax.set_ylim(-0.25, 1.25)
        ax.set_xlabel("SGD step")
        ax.set_ylabel("elbow -b/w")
        ax.set_title("elbows while training all layers")
        ax.legend(fontsize="small", loc="lower left")
        fig.suptitle(f"width {width}")
        fig.savefig(out / f"width{width}.png", dpi=dpi)

        # elbow plots at three moments of all-layer training
        fig = Figure(figsize=(18, 5), layout="constrained")
        snaps = sorted(hist["states"])
        picks = (snaps[0], snaps[len(snaps) // 2], snaps[-1])
        for ax, s in zip(fig.subplots(1, 3), picks, strict=True):
            net.load_state_dict(hist["states"][s])
            cert, ks = certified_kinks(net)
            plot_function_1d(cert, net=net, data=data, truth=gt, ax=ax, ylim=(-2.5, 2.5),
                             title=f"step {s}: {len(ks)} certified kinks")
        fig.savefig(out / f"width{width}_training.png", dpi=dpi)

        # ridge regression on the hidden features at initialisation vs SGD on the output layer
        net.load_state_dict(init)
        ridge_output_layer(net, X, y)
        cert, ks = certified_kinks(net)
        print(f"{width:>5} {'ridge (closed)':>14} {test_mse(net, X_test, y_test):>9.4f} "
              f"{cert.num_regions:>7} {cert.num_pieces:>6} {len(ks):>5}")
        fig = plot_function_1d(cert, net=net, data=data, truth=gt, ylim=(-2.5, 2.5),
                               title=f"ridge on hidden features (width {width}): "
                                     f"{len(ks)} certified kinks")
        fig.savefig(out / f"width{width}_ridge.png", dpi=dpi)
    print(f"wrote {3 * len(widths)} plots to {out}")


if __name__ == "__main__":
    main()
