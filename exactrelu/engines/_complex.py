"""What every exact engine returns (:class:`Complex`, columns of integers, defined in
:mod:`exactrelu._columns`) and the one builder that makes a
:class:`~exactrelu.certificate.Certificate` of it: a columnar certificate, whose regions,
vertices and adjacent pairs are views made on access."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .._columns import Complex, Ragged, Rationals, views
from ..capture import Program, constraint_offsets
from ..certificate import Certificate
from ..domain import Domain

__all__ = ["Complex", "Ragged", "Rationals", "build_certificate", "joined", "regions_of"]

regions_of = views


def build_certificate(prog: Program, domain: Domain, cx: Complex) -> Certificate:
    """The certificate of ``cx``, the complex of ``prog`` on ``domain`` (the one place where a
    certificate is made of an engine's result); it holds ``cx``'s columns, not copies."""
    from .. import __version__

    regions, vertices, adjacency = views(cx)
    return Certificate(domain, prog.input_shape, prog.output_shape, prog.digest(),
                       constraint_offsets(prog, domain), regions, vertices, adjacency,
                       cx.pieces.tolist(), prog.notes(), __version__, dict(cx.stats))


def joined(labels: Sequence[int], pairs: Iterable[tuple[int, int]]) -> list[int]:
    """The regions' ``labels`` with the labels of the two regions of each pair made one, numbered
    by their first region (the linear pieces: ``pairs`` the adjacent regions with equal maps).

    >>> joined([0, 1, 2, 3], [(3, 1), (1, 2)])
    [0, 1, 1, 1]
    """
    parent = list(range(max(labels, default=-1) + 1))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs:
        a, b = find(labels[i]), find(labels[j])
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots: dict[int, int] = {}
    return [roots.setdefault(find(x), len(roots)) for x in labels]
