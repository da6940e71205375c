"""exactrelu: linear regions of ReLU-family PyTorch networks, found in float, certified exactly."""

from __future__ import annotations

import importlib.metadata
import logging

from .capture import Program, capture
from .errors import (CertificateError, ExactReluError, InvalidInputError, MissingDependencyError,
                     RegionLimitError, UnsupportedModelError, VerificationError)
from .graphs import AffineMaps, ExactAffineMaps, affine_maps, exact_affine_maps, exact_forward
from .rules import AffineRule, FloatMap, PiecewiseRule, Rule, register_rule
from .domain import Box, Polytope, RealSpace, Slice
from .certificate import Certificate
from .verify import verify
from .check import check


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

__all__ = [
    "__version__",
    "ExactReluError", "InvalidInputError", "UnsupportedModelError", "RegionLimitError",
    "VerificationError", "CertificateError", "MissingDependencyError",
    "Program", "capture", "register_rule", "Rule", "AffineRule", "PiecewiseRule", "FloatMap",
    "AffineMaps", "ExactAffineMaps", "affine_maps", "exact_affine_maps", "exact_forward",
    "Box", "Polytope", "RealSpace", "Slice", "Certificate", "verify", "check",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
