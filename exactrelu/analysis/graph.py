"""The dual graph of a certificate (regions as nodes, adjacency as edges) and shortest walks."""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._deps import extra_missing
from ..certificate import Certificate
from ..errors import InvalidInputError

__all__ = ["ConstraintRef", "decode_constraint", "dual_graph", "shortest_path"]


@dataclass(frozen=True, order=True)
class ConstraintRef:
    """Where a constraint id comes from: ``op`` is None for a row of the domain (``index`` its
    row), else the piecewise op's number (0 for the first) and ``index`` its switching function.

    For ReLU and LeakyReLU the switching function ``i`` is unit ``i``'s pre-activation; for
    Hardtanh with ``n`` units, ``i < n`` is unit ``i`` against its lower bound and ``n + i``
    against its upper one; for MaxPool2d it is a pair of window positions (the rule's order).
    A frozen dataclass, not a tuple (a tuple's ``index`` method would clash with the field)."""

    op: int | None
    index: int


def decode_constraint(offsets: Sequence[int] | Certificate, cid: int) -> ConstraintRef:
    """The op and switching function (or domain row) of constraint id ``cid``, from a
    certificate's ``constraint_offsets``.

    >>> decode_constraint([4, 10, 13], 11)
    ConstraintRef(op=1, index=1)
    >>> decode_constraint([4, 10, 13], 2)
    ConstraintRef(op=None, index=2)
    """
    offs = list(offsets.constraint_offsets if isinstance(offsets, Certificate) else offsets)
    if not 0 <= cid < offs[-1]:
        raise InvalidInputError(f"constraint id {cid} is outside 0..{offs[-1] - 1}")
    if cid < offs[0]:
        return ConstraintRef(None, cid)
    j = bisect.bisect_right(offs, cid) - 1
    return ConstraintRef(j, cid - offs[j])


def dual_graph(cert: Certificate) -> Any:
    """The dual graph of a certificate as a ``networkx.Graph``.

    Nodes are region indices with attributes ``pattern``, ``output`` (exact map rows),
    ``witness``, ``volume`` (None where not computed) and ``piece``; edges are the certificate's
    adjacent pairs with ``a``, ``b`` (their shared hyperplane ``a . t = b``), ``ids`` (constraint
    ids) and ``sources`` (one :class:`ConstraintRef` per id). Needs networkx (the ``graph``
    extra).

    >>> import torch
    >>> from torch import nn
    >>> from exactrelu import verify
    >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(1.0), net[0].bias.copy_(torch.tensor([0.0, -0.5]))
    >>> g = dual_graph(verify(net, [(-1, 1)], progress=False))
    >>> g.number_of_nodes(), g.number_of_edges()
    (3, 2)
    >>> sorted(src for *_, e in g.edges(data=True) for src in e["sources"])
    [ConstraintRef(op=0, index=0), ConstraintRef(op=0, index=1)]
    """
    try:
        import networkx as nx
    except ImportError as err:
        raise extra_missing(err, "exactrelu.dual_graph", "graph") from None
    g = nx.Graph()
    for r, piece in zip(cert.regions, cert.pieces, strict=True):
        g.add_node(r.index, pattern=r.pattern, output=r.output, witness=r.witness,
                   volume=r.volume, piece=piece)
    for adj in cert.adjacency:
        g.add_edge(adj.i, adj.j, a=adj.a, b=adj.b, ids=adj.ids,
                   sources=[decode_constraint(cert.constraint_offsets, c) for c in adj.ids])
    return g


def shortest_path(cert: Certificate, i: int, j: int, *, weight: str | None = None) -> list[int]:
    """A shortest walk from region ``i`` to region ``j`` through adjacent regions (a list of
    region indices, both ends included).

    ``weight=None`` counts the facets crossed; ``"hamming"`` weighs each step by the number of
    states that differ between the two patterns. Among equally short walks into a region the one
    arriving from the region with the smallest index is kept (the answer is deterministic).
    Raises when ``j`` cannot be reached (regions on one domain are always connected).

    >>> import torch
    >>> from torch import nn
    >>> from exactrelu import verify
    >>> net = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(1.0), net[0].bias.copy_(torch.tensor([0.5, 0.0, -0.5]))
    >>> cert = verify(net, [(-1, 1)], progress=False)
    >>> left = min(cert.regions, key=lambda r: r.witness).index
    >>> right = max(cert.regions, key=lambda r: r.witness).index
    >>> len(shortest_path(cert, left, right)) - 1
    3
    """
    n = cert.num_regions
    for k in (i, j):
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n:
            raise InvalidInputError(f"region {k} does not exist (the certificate has {n})")
    if weight not in (None, "hamming"):
        raise InvalidInputError(f"weight={weight!r}: use None (facets crossed) or 'hamming'")
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for adj in cert.adjacency:
        nbrs[adj.i].append(adj.j)
        nbrs[adj.j].append(adj.i)
    for lst in nbrs:
        lst.sort()
    flat = [[s for op in r.pattern for s in op] for r in cert.regions]

    def cost(u: int, v: int) -> int:
        return 1 if weight is None else sum(x != y for x, y in zip(flat[u], flat[v], strict=True))

    # Dijkstra on integer weights; among equally short ways into a region the predecessor with
    # the smallest index is kept, so the walk returned does not depend on heap order
    dist = {i: 0}
    pred: dict[int, int] = {}
    heap = [(0, i)]
    done: set[int] = set()
    while heap:
        du, u = heapq.heappop(heap)
        if u in done:
            continue
        done.add(u)
        if u == j:
            path = [j]
            while path[-1] != i:
                path.append(pred[path[-1]])
            return path[::-1]
        for v in nbrs[u]:
            if v in done:
                continue
            dv = du + cost(u, v)
            if v not in dist or dv < dist[v] or (dv == dist[v] and u < pred[v]):
                dist[v] = dv
                pred[v] = u
                heapq.heappush(heap, (dv, v))
    raise InvalidInputError(f"region {j} cannot be reached from region {i} through the "
                            "certificate's adjacency")
