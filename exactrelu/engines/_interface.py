"""The engine interface: what ``verify`` hands an exact engine and what it expects back."""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..capture import Program
    from ..domain import Domain
    from ._complex import Complex

__all__ = ["Engine", "Options", "Proposals"]


@dataclass(frozen=True)
class Options:
    """How to run an engine: ``executor`` (Python engine: a ``concurrent.futures.Executor`` for
    the exact work), ``workers`` (threads or processes; None: all cores), ``progress`` (bars on a
    terminal), ``max_regions`` (stop with RegionLimitError beyond that many regions)."""

    executor: cf.Executor | None = None
    workers: int | None = None
    progress: bool = False
    max_regions: int | None = None


class Proposals:
    """The float trace's proposals (a :class:`~exactrelu.trace.Trace` or None), handed to an engine
    once: :meth:`take` returns the trace and drops this object's reference, so that an engine can
    free it once it has read what it needs (the trace of a large net is gigabytes)."""

    def __init__(self, trace: Any = None) -> None:
        self._trace = trace
        self.num_regions = trace.num_regions if trace is not None else 0

    def take(self) -> Any:
        trace, self._trace = self._trace, None
        return trace


class Engine(Protocol):
    """An exact engine: certifies every region of a program on a domain and returns the
    :class:`~exactrelu.engines.Complex` (plain data); ``verify`` makes the certificate of it."""

    name: str

    def applies(self, program: Program, domain: Domain, options: Options) -> str | None:
        """None where this engine takes ``program`` on ``domain`` with ``options``, else a
        sentence saying why not."""
        ...

    def certify(self, program: Program, domain: Domain, proposals: Proposals,
                options: Options) -> Complex:
        """Every region, vertex, facet, adjacent pair and piece, exactly (regions in the canonical
        order of the layer tree, see :func:`exactrelu.certify.run`)."""
        ...
