"""exactrelu: linear regions of ReLU-family PyTorch networks, found in float, certified exactly."""

from __future__ import annotations

# first: the command's Ctrl-C handler, before the slow imports below
from ._command import COMMAND as _COMMAND, exit_interrupted as _exit_interrupted

# isort: split

import importlib.metadata
import logging
import types
from typing import Any

from .errors import (
    CertificateError,
    CertificationError,
    ClusterError,
    ExactReluError,
    InvalidInputError,
    MissingDependencyError,
    RegionLimitError,
    UnsupportedModelError,
    VerificationError,
)


def _version() -> str:
    """The installed distribution's version; in a source tree that was never installed, the one
    in its pyproject.toml (the single place the version is written)."""
    try:
        return importlib.metadata.version("exactrelu")
    except importlib.metadata.PackageNotFoundError:
        import re
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        found = re.search(r'^version = "([^"]+)"', pyproject.read_text(), re.MULTILINE) \
            if pyproject.is_file() else None
        return found.group(1) if found else "0+unknown"


__version__ = _version()


try:
    # numpy before torch: torch imports it from C and clears any error, a Ctrl-C included, so
    # that an interrupt while numpy loads would be lost (and torch would run without numpy)
    import numpy as _numpy  # noqa: F401

    from . import trace as _trace_module
    from .analysis import (
        LocalComplexity,
        PointRegions,
        RegionStatistics,
        SegmentWalk,
        dual_graph,
        local_complexity,
        region_of,
        region_statistics,
        segment_regions,
        shortest_path,
    )
    from .boundary import BoundaryCell, BoundaryComplex, Measure, decision_boundary, level_set
    from .boundary_check import check_boundary
    from .capture import Program, capture
    from .certificate import Certificate
    from .check import check
    from .domain import Box, Polyhedron, Polytope, RealSpace, Slice
    from .export import latex_table
    from .graphs import AffineMaps, ExactAffineMaps, affine_maps, exact_affine_maps, exact_forward
    from .rules import AffineRule, ElementwiseRule, FloatMap, PiecewiseRule, Rule, register_rule
    from .topology import Topology, decision_region_topology, sublevel_topology, superlevel_topology
    from .verify import verify
except KeyboardInterrupt:
    # Ctrl-C while the command line starts, before its handler was set: its exit, not a
    # traceback (see exactrelu.cli)
    if _COMMAND:
        _exit_interrupted()
    raise
if _COMMAND:  # from here on the command handles KeyboardInterrupt itself
    import signal as _signal

    _signal.signal(_signal.SIGINT, _signal.default_int_handler)


class _CallableModule(types.ModuleType):
    """The module ``exactrelu.trace`` that is also its function ``trace``: ``exactrelu.trace(net,
    box)`` calls :func:`exactrelu.trace.trace`, while ``import exactrelu.trace``, ``from
    exactrelu.trace import Trace`` and attribute access (monkeypatching included) see the module.

    One object is both so that the two meanings of the name cannot disagree: a function bound
    over the module's name would make ``import exactrelu.trace as m`` give the function (the
    ``as`` form reads the package's attribute) and ``exactrelu.trace.Trace`` fail."""

    @property
    def __signature__(self) -> Any:
        import inspect

        return inspect.signature(self.trace)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.trace(*args, **kwargs)


_trace_module.__class__ = _CallableModule
trace = _trace_module

__all__ = [
    "__version__",
    "ExactReluError", "InvalidInputError", "UnsupportedModelError", "RegionLimitError",
    "VerificationError", "CertificateError", "CertificationError", "MissingDependencyError",
    "ClusterError",
    "Program", "capture", "register_rule", "Rule", "AffineRule", "PiecewiseRule",
    "ElementwiseRule", "FloatMap",
    "AffineMaps", "ExactAffineMaps", "affine_maps", "exact_affine_maps", "exact_forward",
    "Box", "Polytope", "Polyhedron", "RealSpace", "Slice", "Certificate",
    "verify", "check", "trace",
    "latex_table",
    "PointRegions", "SegmentWalk", "LocalComplexity", "RegionStatistics", "region_of",
    "segment_regions", "dual_graph", "shortest_path", "local_complexity", "region_statistics",
    # boundaries, level sets and topology (issue 19)
    "BoundaryCell", "BoundaryComplex", "Measure", "decision_boundary", "level_set",
    "check_boundary",
    "Topology", "decision_region_topology", "sublevel_topology", "superlevel_topology",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())

