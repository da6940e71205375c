"""Certificates: exact regions, vertices, adjacency and counts, stored as plain JSON.

Rationals are written as ``"p/q"`` strings (never floats, never pickle). A certificate carries the
digest of the network's exact parameters and architecture, the domain, the places where the
network was not taken exactly as written (BatchNorm folded in float64) and the package version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from .domain import Domain
from .errors import CertificateError

FORMAT = "exactrelu-certificate/1"


def _coprime_fraction_311(n: int, d: int) -> Fraction:
    """Before Python 3.12: what ``Fraction(n, d, _normalize=False)`` does once its argument checks
    pass (and what 3.12's ``Fraction._from_coprime_ints`` does): set the two slots."""
    f = object.__new__(Fraction)
    f._numerator = n  # type: ignore[attr-defined]
    f._denominator = d  # type: ignore[attr-defined]
    return f


#: ``coprime_fraction(n, d)``: the Fraction ``n / d`` for Python ints ``n`` and ``d > 0`` already
#: in lowest terms (e.g. the ``p``, ``q`` of a python-flint ``fmpq``, which is always canonical),
#: without the gcd of ``Fraction(n, d)``. Never pass anything not known to be coprime, or an fmpz.
coprime_fraction = getattr(Fraction, "_from_coprime_ints", _coprime_fraction_311)


def q(x: Fraction) -> str:
    return f"{x.numerator}/{x.denominator}" if x.denominator != 1 else str(x.numerator)


def unq(s: Any, what: str = "number") -> Fraction:
    if not isinstance(s, (str, int)) or isinstance(s, bool):
        raise CertificateError(f"{what}: expected a rational as a 'p/q' string, got {s!r}")
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        raise CertificateError(f"{what}: {s!r} is not a rational 'p/q'") from None


@dataclass(slots=True)
class RegionFacet:
    """A facet ``a . t <= b`` of a region: ``a``, ``b`` one of its constraints as it bounds the
    region; ``ids`` every constraint id of the region (domain rows included) vanishing on the
    facet, each once; ``vertices`` and ``rays`` exactly the region's vertices and rays on it."""

    a: tuple[Fraction, ...]
    b: Fraction
    ids: tuple[int, ...]
    vertices: tuple[int, ...]  # global vertex indices on this facet
    rays: tuple[int, ...] = ()  # indices into the region's rays lying on this facet


@dataclass(slots=True)
class Region:
    """One certified activation region. Every field is a claim the checker proves, except
    ``repaired`` (provenance: the exact layer found the region where the float trace had missed
    or mislabelled it), which it never reads. ``vertices`` holds every vertex of the region, each
    once; ``facets`` every facet; ``rays`` the extreme rays modulo the lineality space spanned by
    ``lines``; ``volume`` the exact volume (bounded domains; required up to 3-D)."""

    index: int
    pattern: list[list[int]]  # one flat list of states per piecewise op (read-only: may be shared)
    witness: tuple[Fraction, ...]  # strictly inside
    facets: list[RegionFacet]
    vertices: list[int]  # global vertex indices
    output: list[list[Fraction]]  # rows [a_1..a_d, c]: output_i(t) = a . t + c
    volume: Fraction | None = None
    repaired: bool = False
    rays: list[tuple[Fraction, ...]] = field(default_factory=list)  # extreme rays (unbounded domains)
    lines: list[tuple[Fraction, ...]] = field(default_factory=list)  # lineality space basis

    def expression(self, names: Sequence[str] | None = None) -> list:
        """The exact output map as sympy expressions (one per output)."""
        import sympy

        d = len(self.witness)
        syms = sympy.symbols(list(names) if names else [f"t{i}" for i in range(d)])
        syms = syms if isinstance(syms, (list, tuple)) else [syms]
        return [sum((sympy.Rational(a.numerator, a.denominator) * s for a, s in zip(row[:-1], syms)), sympy.Integer(0))
                + sympy.Rational(row[-1].numerator, row[-1].denominator) for row in self.output]


@dataclass(slots=True)
class Adjacency:
    """Regions ``i < j`` share a (d-1)-face on the hyperplane ``a . t = b`` (the first non-zero
    entry of ``a`` is 1); ``ids`` the union of the ids of their facets on it."""

    i: int
    j: int
    a: tuple[Fraction, ...]
    b: Fraction
    ids: tuple[int, ...]


@dataclass
class Certificate:
    """Exact regions of a network on a domain; every number is a theorem about the network,
    proven by :func:`exactrelu.check` (its docstring gives the argument for each field). Not
    claims, never read by the checker: ``version`` and ``stats`` (which engine made it, how long
    it took, what the float trace proposed) and each region's ``repaired`` flag."""

    domain: Domain
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    digest: str
    constraint_offsets: list[int]
    regions: list[Region]
    vertices: list[tuple[Fraction, ...]]
    adjacency: list[Adjacency]
    pieces: list[int]  # piece index of every region
    notes: list[str] = field(default_factory=list)
    version: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def num_regions(self) -> int:
        return len(self.regions)

    @property
    def num_pieces(self) -> int:
        return len(set(self.pieces))

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def dim(self) -> int:
        return self.domain.dim

    def edges(self) -> list[tuple[int, int]]:
        """2-D only: the edges of the complex (pairs of global vertex indices, sorted).

        A facet is cut at every vertex of the complex lying on it (a vertex of a neighbour can sit
        inside a facet where a hyperplane bends), so V - E + F = 1 holds on a polygon domain.
        """
        if self.dim != 2:
            raise CertificateError("edges() is defined for 2-D certificates")
        groups: dict[tuple, list[RegionFacet]] = {}
        for r in self.regions:
            for f in r.facets:
                groups.setdefault(canonical_hyperplane(f.a, f.b)[0], []).append(f)
        out: set[tuple[int, int]] = set()
        for key, fs in groups.items():
            a = key[0]
            direction = (-a[1], a[0])
            pos = lambda k: self.vertices[k][0] * direction[0] + self.vertices[k][1] * direction[1]  # noqa: E731
            on_line = sorted({k for f in fs for k in f.vertices}, key=pos)
            for f in fs:
                lo, hi = sorted((pos(k) for k in f.vertices))[0], sorted((pos(k) for k in f.vertices))[-1]
                pts = [k for k in on_line if lo <= pos(k) <= hi]
                for u, v in zip(pts, pts[1:]):
                    out.add((min(u, v), max(u, v)))
        return sorted(out)

    def to_latex(self, names: Sequence[str] | None = None, max_regions: int = 50, **kwargs: Any) -> str:
        """A LaTeX piecewise definition of a small 1-D/2-D net (see ``exactrelu._latex``)."""
        from ._latex import certificate_to_latex
        return certificate_to_latex(self, names, max_regions, **kwargs)

    def summary(self) -> str:
        return (f"{self.num_regions} regions, {self.num_pieces} pieces, {self.num_vertices} vertices, "
                f"{len(self.adjacency)} adjacent pairs on {self.domain!r}")

    # --------------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "digest": self.digest,
            "domain": self.domain.to_json(),
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "constraint_offsets": list(self.constraint_offsets),
            "notes": list(self.notes),
            "num_regions": self.num_regions,
            "num_pieces": self.num_pieces,
            "vertices": [[q(c) for c in v] for v in self.vertices],
            "regions": [{
                "pattern": r.pattern,
                "witness": [q(c) for c in r.witness],
                "facets": [{"a": [q(c) for c in f.a], "b": q(f.b), "ids": list(f.ids), "vertices": list(f.vertices),
                            "rays": list(f.rays)} for f in r.facets],
                "rays": [[q(c) for c in v] for v in r.rays],
                "lines": [[q(c) for c in v] for v in r.lines],
                "vertices": r.vertices,
                "output": [[q(c) for c in row] for row in r.output],
                "volume": None if r.volume is None else q(r.volume),
                "repaired": r.repaired,
            } for r in self.regions],
            "adjacency": [{"i": a.i, "j": a.j, "a": [q(c) for c in a.a], "b": q(a.b), "ids": list(a.ids)}
                          for a in self.adjacency],
            "pieces": self.pieces,
            "stats": self.stats,
        }

    def save(self, path: str | Path) -> None:
        """Write the certificate as JSON."""
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")))

    @staticmethod
    def load(path: str | Path) -> "Certificate":
        """Read a certificate written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise CertificateError(f"no certificate at {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CertificateError(f"{path} is not a JSON certificate ({exc})") from None
        return Certificate.from_json(data)

    @staticmethod
    def from_json(data: dict[str, Any]) -> "Certificate":
        try:
            if data.get("format") != FORMAT:
                raise CertificateError(f"unknown certificate format {data.get('format')!r} (expected {FORMAT})")
            regions = []
            for i, r in enumerate(data["regions"]):
                regions.append(Region(
                    i, [list(map(int, p)) for p in r["pattern"]],
                    tuple(unq(c, f"region {i} witness") for c in r["witness"]),
                    [RegionFacet(tuple(unq(c) for c in f["a"]), unq(f["b"]), tuple(f["ids"]), tuple(f["vertices"]),
                                 tuple(f.get("rays", ()))) for f in r["facets"]],
                    list(r["vertices"]),
                    [[unq(c) for c in row] for row in r["output"]],
                    None if r["volume"] is None else unq(r["volume"]),
                    bool(r.get("repaired", False)),
                    [tuple(unq(c, "ray") for c in v) for v in r.get("rays", [])],
                    [tuple(unq(c, "line") for c in v) for v in r.get("lines", [])]))
            cert = Certificate(
                Domain.from_json(data["domain"]), tuple(data["input_shape"]), tuple(data["output_shape"]),
                data["digest"], list(data["constraint_offsets"]), regions,
                [tuple(unq(c, "vertex") for c in v) for v in data["vertices"]],
                [Adjacency(a["i"], a["j"], tuple(unq(c) for c in a["a"]), unq(a["b"]), tuple(a["ids"]))
                 for a in data["adjacency"]],
                list(data["pieces"]), list(data.get("notes", [])), data.get("version", ""), data.get("stats", {}))
        except CertificateError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise CertificateError(f"malformed certificate: {type(exc).__name__}: {exc}") from None
        if data.get("num_regions") != cert.num_regions:
            raise CertificateError(f"num_regions says {data.get('num_regions')} but {cert.num_regions} regions are listed")
        if data.get("num_pieces") != cert.num_pieces:
            raise CertificateError(f"num_pieces says {data.get('num_pieces')} but the piece labels give {cert.num_pieces}")
        return cert


def canonical_hyperplane(a: Sequence[Fraction], b: Fraction) -> tuple[tuple, int]:
    """((a', b') scaled so the first non-zero entry of a' is 1, side): side is the sign of that entry."""
    for v in a:
        if v != 0:
            s = abs(v)
            side = 1 if v > 0 else -1
            return (tuple(x * side / s for x in a), b * side / s), side
    raise CertificateError("a facet with a zero normal")


def _all_facet_vertex_sets(cert: Certificate) -> list[tuple[int, ...]]:
    return [f.vertices for r in cert.regions for f in r.facets]
