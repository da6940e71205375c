"""Serra et al.'s MILP region counting (ICML 2018, "Bounding and counting linear regions of deep
neural networks", Sec. 5), reproduced as a *float baseline*.

Activation patterns of a small ReLU MLP (nn.Sequential of nn.Linear / nn.ReLU) over a box are
enumerated with a mixed-integer feasibility problem, one binary a_i per ReLU unit, big-M
formulation:

    lo <= x <= hi,                 z = W h_prev + b (h_0 = x),
    h >= 0,  h >= z,  h <= z + M (1 - a),  h <= M a,
    z >= eps - M (1 - a),          z <= -eps + M a        (strict "on"/"off" with margin eps),

and after each pattern a* is found, the no-good cut  sum_{a*_i=1} (1 - a_i) + sum_{a*_i=0} a_i >= 1
excludes it.  The count is the number of feasible patterns before the problem becomes infeasible.

This is a FLOAT method with tolerances: M comes from float interval arithmetic (padded), HiGHS works
with feasibility/integrality tolerances (~1e-7..1e-9), and the margin eps asks for a pattern that is
strictly realised by at least eps at some point, so that (roughly) only full-dimensional patterns
count. Consequences: regions thinner than about eps / |gradient| can be missed; a unit whose
pre-activation is identically zero on a region (allowed by the exact definition, where it does not
split) makes that region infeasible here; a pattern realised only within the solver tolerance of eps
could be counted. Observed: with HiGHS's default tolerances (mip_feasibility_tolerance 1e-6) this
over-counts already on depth-5 sawtooths (33 instead of 32 patterns for telgarsky_L5, 55 for
telgarsky_transversal_L5, 32 instead of 27 for fold3_1d_L3): the interval big-M grows like 6^depth,
and a tolerance of 1e-6 on a_i lets z violate the margin by M * 1e-6 >> eps.  The defaults below
therefore tighten HiGHS's feasibility tolerances to 1e-9 (pass solver_opts={} for HiGHS's own).
It is a baseline to compare against, never the source of truth.  Runaway is guarded by
`max_patterns` and `time_limit` (seconds); hitting either is reported in the result.

cvxpy re-compiles the problem for every new cut (5-8 ms each), which is fine for the tiny cases it
is meant for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch.nn as nn

__all__ = ["MilpResult", "milp_count"]


@dataclass
class MilpResult:
    count: int
    patterns: list = field(default_factory=list)
    complete: bool = True  # False if a cap or the time limit stopped the enumeration
    reason: str = ""
    seconds: float = 0.0


def _layers(net: nn.Module):
    if not isinstance(net, nn.Sequential):
        raise TypeError("milp_count supports nn.Sequential only")
    mods = list(net)
    layers = []  # (W, b) for every Linear followed by a ReLU
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear):
            if i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU):
                W = m.weight.detach().double().cpu().numpy()
                b = (m.bias.detach().double().cpu().numpy() if m.bias is not None
                     else np.zeros(W.shape[0]))
                layers.append((W, b))
        elif not isinstance(m, nn.ReLU):
            raise TypeError(f"milp_count: unsupported module {type(m).__name__}")
    for i, m in enumerate(mods):
        if isinstance(m, nn.ReLU) and (i == 0 or not isinstance(mods[i - 1], nn.Linear)):
            raise TypeError("milp_count: every ReLU must follow a Linear")
    return layers


def milp_count(net: nn.Module, domain, eps: float = 1e-5, max_patterns: int = 2000,
               time_limit: float = 60.0, solver_opts=None) -> MilpResult:
    import cvxpy as cp

    if solver_opts is None:
        solver_opts = {"mip_feasibility_tolerance": 1e-9, "primal_feasibility_tolerance": 1e-9}

    t0 = time.perf_counter()
    lo = np.array([float(a) for a, _ in domain])
    hi = np.array([float(b) for _, b in domain])
    layers = _layers(net)
    x = cp.Variable(len(domain))
    cons = [x >= lo, x <= hi]
    h_prev, l_prev, u_prev = x, lo, hi
    binaries = []
    for W, b in layers:
        # interval bounds of z = W h + b over the box of h (float, padded for safety)
        Wp, Wn = np.clip(W, 0, None), np.clip(W, None, 0)
        lz = Wp @ l_prev + Wn @ u_prev + b
        uz = Wp @ u_prev + Wn @ l_prev + b
        M = np.maximum(np.abs(lz), np.abs(uz)) * 1.01 + 1.0 + eps
        n = W.shape[0]
        z = cp.Variable(n)
        h = cp.Variable(n)
        a = cp.Variable(n, boolean=True)
        cons += [z == W @ h_prev + b, h >= 0, h >= z,
                 h <= z + cp.multiply(M, 1 - a), h <= cp.multiply(M, a),
                 z >= eps - cp.multiply(M, 1 - a), z <= -eps + cp.multiply(M, a)]
        binaries.append(a)
        h_prev, l_prev, u_prev = h, np.clip(lz, 0, None), np.clip(uz, 0, None)
    allbin = cp.hstack(binaries) if len(binaries) > 1 else binaries[0]
    patterns = []
    cuts = []
    while True:
        if len(patterns) >= max_patterns:
            return MilpResult(len(patterns), patterns, False, f"cap of {max_patterns} patterns",
                              time.perf_counter() - t0)
        if time.perf_counter() - t0 > time_limit:
            return MilpResult(len(patterns), patterns, False, f"time limit {time_limit}s",
                              time.perf_counter() - t0)
        prob = cp.Problem(cp.Minimize(0), cons + cuts)
        prob.solve(solver=cp.HIGHS, **solver_opts)
        if prob.status in ("infeasible", "infeasible_inaccurate"):
            break
        if prob.status not in ("optimal", "optimal_inaccurate"):
            return MilpResult(len(patterns), patterns, False, f"solver status {prob.status}",
                              time.perf_counter() - t0)
        pat = tuple(round(float(v)) for v in np.atleast_1d(allbin.value))
        if pat in patterns:  # integrality tolerance let an excluded pattern through
            return MilpResult(len(patterns), patterns, False, "repeated pattern (tolerance)",
                              time.perf_counter() - t0)
        patterns.append(pat)
        on = [i for i, s in enumerate(pat) if s == 1]
        off = [i for i, s in enumerate(pat) if s == 0]
        expr = 0
        if on:
            expr = expr + cp.sum(1 - allbin[on])
        if off:
            expr = expr + cp.sum(allbin[off])
        cuts.append(expr >= 1)
    return MilpResult(len(patterns), patterns, True, "", time.perf_counter() - t0)
