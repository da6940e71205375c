"""The compiled engine: when it applies, its input, and the :class:`Complex` of its output.

``exactrelu._core`` (C++ and GMP, built from ``exactrelu/_core.cpp`` at install time) certifies
the networks most studies use, a chain ``affine -> (elementwise op -> affine)*`` (Linear, Conv,
BatchNorm, pooling by averages, Flatten and the like between ReLU, LeakyReLU or Hardtanh) on a
bounded 2-D or 3-D domain (a box, a polytope or a plane through inputs), with the same algorithm
as the pure-Python arrangement path of :mod:`exactrelu.certify` and the same complex (compared
by :func:`exactrelu.engines.canonical` in ``tests/test_engines.py``, entry by entry in
``tests/test_fastpath.py``). Everything else (other ops, other dimensions, unbounded domains, an
explicit executor) goes to the Python engine. The core returns plain data keyed as the fields
of :class:`Complex`: index data as bytes of native int64 (wrapped by ``numpy.frombuffer``
without a copy), each op's distinct states as bytes (bits when they are all 0 or 1, else
int8), rationals as lists of Python ints;
never Python objects of the certificate.

The float trace is not needed by the compiled layer (its cuts partition each parent, so its
children are complete by construction); it is only compared with the result afterwards, to count
what it proposed wrongly (``spurious``) and what it missed (``repaired``), as the Python path does.

>>> import torch
>>> from torch import nn
>>> from exactrelu.capture import capture
>>> from exactrelu.domain import as_domain
>>> torch.manual_seed(0) and None
>>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
>>> plan(capture(net, (2,)), as_domain([(-1, 1), (-1, 1)])) is not None or _core is None
True
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import numpy as np

from .. import _deps, _exact
from .._columns import StateTable
from .._progress import _Silent, progress_bar
from .._runtime import paused_gc
from ..capture import INPUT, Program, constraint_offsets
from ..certify import root_cell
from ..domain import Domain
from ..errors import CertificationError, MissingDependencyError, RegionLimitError
from ..rules import AffineRule, ElementwiseRule, ReshapeRule, exact_cache, plain_elementwise
from ._complex import Complex, Ragged, Rationals
from ._interface import Options, Proposals

_core = _deps.core  # None when not built: the Python exact layer does everything

__all__ = ["CompiledEngine", "available", "certify", "explain", "plan"]


def available() -> bool:
    """Is the compiled exact layer built and importable?"""
    return _core is not None


@dataclass
class Plan:
    """What the compiled layer needs besides the root cell: per piecewise op, its units, its
    thresholds, its states' integer slopes and constants over ``sa``, the id of its first
    switching function, and the affine layer after it as integers ``[Az | az] / dA``."""

    levels: list[tuple]


def _elementwise(nd: Any) -> bool:
    rule = nd.rule
    if not plain_elementwise(rule) or len(nd.inputs) != 1:
        return False
    ts = rule.thresholds(nd.module)
    return len(ts) == 1 or (len(ts) == 2 and ts[0] < ts[1])


def _segment(prog: Program, lo: int, hi: int) -> list[int] | None:
    """The nodes ``lo+1 .. hi-1`` after piecewise node ``lo`` if they form a chain of affine and
    reshape layers, each read only by the next (the last by node ``hi`` or as the output)."""
    chain = list(range(lo + 1, hi))
    prev = lo
    for i in chain:
        nd = prog.nodes[i]
        fwd = type(nd.rule).exact_forward
        if fwd is not AffineRule.exact_forward and fwd is not ReshapeRule.exact_forward:
            return None
        if list(nd.inputs) != [prev] or prog._last_use[prev] != i:
            return None
        prev = i
    return chain


def _int_affine(prog: Program, chain: list[int],
                n_in: int) -> tuple[list[int], int, list[int] | None, int]:
    """The composition of the affine layers ``chain`` as integers: (Az row-major, n_out, az or
    None when zero, dA) with ``[A | a] = [Az | az] / dA`` exactly."""
    affine = [i for i in chain
              if type(prog.nodes[i].rule).exact_forward is AffineRule.exact_forward]
    if not affine:
        return [int(r == c) for r in range(n_in) for c in range(n_in)], n_in, None, 1
    if len(affine) == 1:
        nd = prog.nodes[affine[0]]
        cache = exact_cache(nd.module)
        key = ("fastpath-int", tuple(nd.in_shapes[0]))
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = _integers(_exact_affine(nd))
        return hit
    first = _exact_affine(prog.nodes[affine[0]])
    A, a = first.A, _exact.fmpq_mat(len(first.a), 1, first.a)
    for i in affine[1:]:
        aff = _exact_affine(prog.nodes[i])
        A, a = aff.A * A, aff.A * a + _exact.fmpq_mat(len(aff.a), 1, aff.a)
    return _integers(_exact.ExactAffine(A, a.entries()))


def _exact_affine(nd: Any) -> _exact.ExactAffine:
    """The exact map of an affine node (its rule's exact_forward is AffineRule's)."""
    return cast(AffineRule, nd.rule).exact_affine(nd.module, tuple(nd.in_shapes[0]))


def _integers(aff: Any) -> tuple[list[int], int, list[int] | None, int]:
    n_out, n_in = aff.A.nrows(), aff.A.ncols()
    aug = _exact.fmpq_mat(n_out, n_in + 1, [v for r, c in zip(aff.A.tolist(), aff.a, strict=True)
                                            for v in (*r, c)])
    N, den = aug.numer_denom()
    flat = [int(v) for v in N.entries()]
    Az = [v for r in range(n_out) for v in flat[r * (n_in + 1): r * (n_in + 1) + n_in]]
    az = [flat[r * (n_in + 1) + n_in] for r in range(n_out)]
    return Az, n_out, (az if any(az) else None), int(den)


def plan(prog: Program, domain: Domain) -> Plan | None:
    """The compiled layer's plan for ``prog`` on ``domain``, or None where it does not apply."""
    got = explain(prog, domain)
    return got if isinstance(got, Plan) else None


def explain(prog: Program, domain: Domain) -> Plan | str:
    """:func:`plan`, or a sentence saying why the compiled layer does not apply."""
    if _core is None:
        return _deps.core_missing()
    if domain.dim not in (2, 3) or not domain.is_bounded:
        return ("the compiled exact layer takes bounded 2-D and 3-D domains (this one: "
                f"{domain.dim}-D" + ("" if domain.is_bounded else ", unbounded") + ")")
    if not prog.piecewise:
        return "the network has no piecewise op"
    pw = prog.piecewise
    for i in pw:
        nd = prog.nodes[i]
        if not _elementwise(nd):
            return (f"{nd.name}: the compiled exact layer takes ReLU, LeakyReLU and "
                    "Hardtanh-like ops only")
        if cast(ElementwiseRule, nd.rule).unit_slopes(nd.module, nd.in_shapes[0]) is not None:
            return (f"{nd.name}: the compiled exact layer takes one set of slopes per op, not one "
                    "per unit (PReLU with a slope per channel)")
    # the first op's input must be all that the ops before it leave for later
    first = prog.nodes[pw[0]]
    if (first.inputs[0] != INPUT and prog._last_use[first.inputs[0]] != pw[0]) or \
            any(INPUT in prog.nodes[i].inputs for i in range(pw[0] + 1, len(prog.nodes))):
        return "the network is not a chain after its first piecewise op (a skip connection)"
    offsets = constraint_offsets(prog, domain)
    levels = []
    for j, i in enumerate(pw):
        nd = prog.nodes[i]
        hi = pw[j + 1] if j + 1 < len(pw) else len(prog.nodes)
        chain = _segment(prog, i, hi)
        end = (chain[-1] if chain else i) if chain is not None else None
        if chain is None or (j + 1 < len(pw) and list(prog.nodes[hi].inputs) != [end]) or \
                (j + 1 == len(pw) and prog.output != end):
            return (f"after {nd.name}: the compiled exact layer takes chains of affine layers "
                    "between piecewise ops")
        n = math.prod(nd.in_shapes[0])
        rule, module = cast(ElementwiseRule, nd.rule), nd.module  # checked above
        ts = [Fraction(t) for t in rule.thresholds(module)]
        sc = [(Fraction(a), Fraction(c)) for a, c in rule.slopes_consts(module)]
        if len(sc) != len(ts) + 1:
            return f"{nd.name}: a state per interval between thresholds is expected"
        sa = math.lcm(*(v.denominator for pair in sc for v in pair))
        states = [(int(a * sa), int(c * sa)) for a, c in sc]
        Az, n_out, az, dA = _int_affine(prog, chain, n)
        levels.append((n, [(t.numerator, t.denominator) for t in ts], states, sa, offsets[j], Az,
                       n_out, az, dA))
    return Plan(levels)


def _root_spec(root: Any, key: Any, d: int) -> tuple:
    """The root cell for the compiled layer: its vertices as integer rows (x_1, .., x_d, W) (2-D:
    counter-clockwise), its facets as integer rows with their scales, ids and the positions of
    their vertices (2-D: facet k joins vertices k and k + 1), witness, volume and the exact map
    entering the first piecewise op."""
    verts = []
    for p in root.vertices:
        w = math.lcm(*(int(c.q) for c in p))
        verts.append((*(int(c.p) * (w // int(c.q)) for c in p), w))
    facets = []
    for f in root.facets:
        vals = [_exact.to_fmpq(v) for v in f.slack]
        scale = math.lcm(*(int(v.q) for v in vals)) * f.scale
        ints = [int(v.p) * (scale // (int(v.q) * f.scale)) for v in vals]
        facets.append((ints, scale, tuple(f.ids), tuple(f.vertices)))
    witness = [int(x) for q in map(_exact.to_fmpq, root.witness) for x in (q.p, q.q)]
    vol = _exact.to_fmpq(root.volume)
    m = _exact.as_int(root.live[key])
    return (verts, facets, witness, (int(vol.p), int(vol.q)), int(m.den),
            [v for r in m.rows for v in r])


def _proposals(trace: Any) -> list[tuple[bytes, bool]]:
    """The trace's states per op as the core reads them, rows of bytes and whether they are
    bits: a :class:`~exactrelu.trace.Trace`'s packed rows as it keeps them (bits for two-state
    ops), else (an object with ``patterns`` only) a byte per unit."""
    if hasattr(trace, "packed_states") and all(
            trace.state_bytes(j) <= 1 for j in range(len(trace.program.piecewise))):
        return [(np.ascontiguousarray(trace.packed_states(j).cpu().numpy()).tobytes(),
                 trace.state_bytes(j) == 0) for j in range(len(trace.program.piecewise))]
    out = []
    for p in trace.patterns:
        P = p.reshape(trace.num_regions, -1).cpu().numpy()
        if P.size and (P.min() < -128 or P.max() > 127):
            P = np.full_like(P, 127)  # states no elementwise op has: never a certified one
        out.append((np.ascontiguousarray(P.astype(np.int8)).tobytes(), False))
    return out


def certify(prog: Program, domain: Domain, pl: Plan, trace: Any = None, threads: int = 1,
            progress: bool = False, max_regions: int | None = None) -> Complex:
    """Certify with the compiled layer on ``threads`` threads: the :class:`Complex` (its
    ``stats``: the counts, ``compiled_ms`` and ``compiled_limbs``). The result does not depend on
    the number of threads. With ``progress``, a progress bar (on a terminal only) counts the
    subtrees certified. With ``max_regions``, the threads stop as soon as more regions than that
    are known to exist (leaves certified plus cells waiting, each of which holds one at least)
    and :class:`RegionLimitError` is raised."""
    if _core is None:
        raise MissingDependencyError(_deps.core_missing())
    root = root_cell(prog, domain)
    first = prog.nodes[prog.piecewise[0]]
    spec = (domain.dim, _root_spec(root, first.inputs[0], domain.dim), pl.levels,
            constraint_offsets(prog, domain)[0])
    proposals = None
    if trace is not None:  # the float trace's patterns, compared with the result by the core
        proposals = _proposals(trace)
        del trace  # freed here when the caller's engine handed it over (see Proposals.take)
    with paused_gc(), progress_bar(0, "certify (subtrees)", progress) as bar:
        report = None
        if progress and not isinstance(bar, _Silent):
            def report(done: int, total: int) -> None:
                if bar.total != total:
                    bar.total = total
                    bar.refresh()
                bar.update(done - bar.n)
        try:
            out = _core.certify2d(spec, max(1, int(threads)), proposals, report, max_regions or 0)
        except ArithmeticError as exc:
            raise CertificationError(str(exc)) from None
    if isinstance(out, int):
        raise RegionLimitError(f"more than max_regions={max_regions:,} regions: at least "
                               f"{out:,} exist (the compiled engine stopped there)", out)
    stats = out["counts"]
    # per phase of the compiled layer, in milliseconds (3 decimals: JSON without exponents)
    stats["compiled_ms"] = {k: round(v * 1000, 3) for k, v in out["seconds"].items()}
    states = []
    for (b, bits), lv in zip(out["states"], pl.levels, strict=True):
        n = lv[0]
        data = np.frombuffer(b, dtype=np.uint8 if bits else np.int8)
        states.append(StateTable(data.reshape(-1, (n + 7) // 8 if bits else n), n, bits))
    return Complex(
        d=out["d"], n_out=out["n_out"], states=states, state_ids=out["state_ids"],
        witness=Rationals(*out["witness"]), vertices=Rationals(*out["vertices"]),
        region_vertices=Ragged(*out["region_vertices"]), rows=Rationals(*out["rows"]),
        facet_start=out["facet_start"], facet_row=out["facet_row"],
        facet_ids=Ragged(*out["facet_ids"]), facet_vertices=Ragged(*out["facet_vertices"]),
        outputs=Rationals(*out["outputs"]), volume=Rationals(*out["volume"]),
        repaired=out["repaired"], adj_i=out["adj_i"], adj_j=out["adj_j"],
        adj_plane=out["adj_plane"], adj_ids=Ragged(*out["adj_ids"]),
        planes=Rationals(*out["planes"]), pieces=out["pieces"], stats=stats)


class CompiledEngine:
    """The compiled engine (see the module's docstring) as an
    :class:`~exactrelu.engines.Engine`."""

    name = "compiled"

    def applies(self, program: Program, domain: Domain, options: Options) -> str | None:
        if options.executor is not None:
            return ("an executor is for the Python engine; the compiled one runs on threads "
                    "(workers=), or on a Dask cluster (executor=client)")
        got = explain(program, domain)
        return got if isinstance(got, str) else None

    def certify(self, program: Program, domain: Domain, proposals: Proposals,
                options: Options) -> Complex:
        pl = plan(program, domain)
        if pl is None:
            raise CertificationError(f"engine='compiled': {explain(program, domain)}")
        threads = options.workers or os.cpu_count() or 1
        return certify(program, domain, pl, proposals.take(), threads, options.progress,
                       options.max_regions)
