"""The exact engines behind one seam.

An engine (:class:`Engine`) says whether it takes a program on a domain (``applies``: None, or
the reason it does not) and certifies it (``certify``), returning a :class:`Complex`: plain
integers for the regions, vertices, facets, adjacency and pieces. :func:`build_certificate` is the
one place a :class:`~exactrelu.certificate.Certificate` is made of it. Engines are found in the
plain dict :data:`ENGINES`, in the order ``engine="auto"`` tries them; :func:`choose` picks one.
Engines agree on :func:`canonical`, the complex up to the numbering of its regions, vertices,
facets and pieces (``tests/test_engines.py``).

>>> sorted(ENGINES)
['compiled', 'python']
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from ..capture import Program
from ..certificate import Adjacency, Certificate, Region
from ..domain import Domain
from ..errors import InvalidInputError
from ._complex import Complex, Ragged, Rationals, build_certificate, regions_of
from ._interface import Engine, Options, Proposals
from .compiled import CompiledEngine
from .python import PythonEngine

__all__ = ["ENGINES", "Complex", "Engine", "Options", "Proposals", "Ragged", "Rationals",
           "build_certificate", "canonical", "choose"]

#: The exact engines by name, in the order ``engine="auto"`` tries them.
ENGINES: dict[str, Engine] = {"compiled": CompiledEngine(), "python": PythonEngine()}


def choose(engine: str, program: Program, domain: Domain, options: Options) -> Engine:
    """The engine named ``engine``, or for ``"auto"`` the first of :data:`ENGINES` that applies;
    an InvalidInputError saying why when the named one does not apply."""
    if engine != "auto":
        if engine not in ENGINES:
            raise InvalidInputError(f"engine={engine!r}: use 'auto' or one of "
                                    f"{', '.join(map(repr, ENGINES))}")
        why = ENGINES[engine].applies(program, domain, options)
        if why is not None:
            raise InvalidInputError(f"engine={engine!r}: {why}; use engine='python' (or 'auto')")
        return ENGINES[engine]
    for eng in ENGINES.values():
        if eng.applies(program, domain, options) is None:
            return eng
    raise InvalidInputError("no exact engine takes this network and domain")  # python takes all


def _key(x: Fraction) -> tuple[int, int]:
    return x.numerator, x.denominator


def canonical(cert: Certificate | Complex) -> dict[str, Any]:
    """The complex of a certificate (or an engine's :class:`Complex`) with canonical numbering,
    as plain data: equal for two results iff they certify the same regions with the same
    patterns, output maps, volumes, vertices, facets (hyperplane, constraint ids, vertices and
    rays on them), rays and lines, adjacency (pairs, planes and ids) and pieces. Not in it: the
    witnesses (any point strictly inside is one), the order of regions, vertices and facets,
    ``repaired`` and ``stats`` (provenance).

    Regions are numbered in the order of their patterns (flattened, compared as tuples);
    vertices in the order of their exact coordinates; a region's facets by (ids, a, b), its
    rays and lines by their coordinates; pieces by their first region. Vertices are written as
    their coordinates (``(numerator, denominator)`` pairs), so that the form needs no vertex
    numbering at all.
    """
    regions: Sequence[Region]
    vertices: Sequence[tuple[Fraction, ...]]
    adjacency: Sequence[Adjacency]
    if isinstance(cert, Complex):
        regions, vertices, adjacency = regions_of(cert)
        pieces = cert.pieces.tolist()
    else:
        regions, vertices, adjacency, pieces = cert.regions, cert.vertices, cert.adjacency, \
            cert.pieces
    point = [tuple(map(_key, v)) for v in vertices]
    flat = [tuple(x for s in r.pattern for x in s) for r in regions]
    order = sorted(range(len(regions)), key=flat.__getitem__)
    new = {old: k for k, old in enumerate(order)}

    def pts(ps: Any) -> list:
        return sorted(tuple(map(_key, p)) for p in ps)

    out_regions = []
    for old in order:
        r = regions[old]
        facets = sorted(
            (tuple(f.ids), tuple(map(_key, f.a)), _key(f.b),
             tuple(sorted(point[v] for v in f.vertices)),
             tuple(sorted(tuple(map(_key, r.rays[k])) for k in f.rays)))
            for f in r.facets)
        out_regions.append({
            "pattern": [list(s) for s in r.pattern],
            "output": [[_key(v) for v in row] for row in r.output],
            "volume": None if r.volume is None else _key(r.volume),
            "vertices": sorted(point[v] for v in r.vertices),
            "facets": facets, "rays": pts(r.rays), "lines": pts(r.lines)})
    adj = sorted((min(new[a.i], new[a.j]), max(new[a.i], new[a.j]), tuple(map(_key, a.a)),
                  _key(a.b), tuple(a.ids)) for a in adjacency)
    label: dict[int, int] = {}
    piece = [label.setdefault(pieces[old], len(label)) for old in order]
    return {"regions": out_regions, "vertices": sorted(point), "adjacency": adj, "pieces": piece}
