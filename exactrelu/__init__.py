"""exactrelu: linear regions of ReLU-family PyTorch networks, found in float, certified exactly."""

from __future__ import annotations

import logging

from .errors import (CertificateError, ExactReluError, InvalidInputError, RegionLimitError,
                     UnsupportedModelError, VerificationError)

__version__ = "0.1.0"

try:
    from .capture import Program, capture
    from .graphs import AffineMaps, ExactAffineMaps, affine_maps, exact_affine_maps, exact_forward
    from .rules import AffineRule, FloatMap, PiecewiseRule, Rule, register_rule
    from .domain import Box, Polytope, RealSpace, Slice
    from .certificate import Certificate
    from .verify import verify
    from .check import check
except ImportError as _exc:
    # A dependency is missing (e.g. cddlib's cdd.gmp): ``import exactrelu`` still succeeds, so
    # that the command line can say what to install; each name below raises the error when used.
    _missing: ImportError | None = _exc
else:
    _missing = None

__all__ = [
    "__version__",
    "ExactReluError", "InvalidInputError", "UnsupportedModelError", "RegionLimitError",
    "VerificationError", "CertificateError",
    "Program", "capture", "register_rule", "Rule", "AffineRule", "PiecewiseRule", "FloatMap",
    "AffineMaps", "ExactAffineMaps", "affine_maps", "exact_affine_maps", "exact_forward",
    "Box", "Polytope", "RealSpace", "Slice", "Certificate", "verify", "check",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> object:
    if _missing is not None and name in __all__:
        raise ImportError(f"exactrelu.{name} is unavailable: {_missing}",
                          name=_missing.name) from _missing
    raise AttributeError(f"module 'exactrelu' has no attribute {name!r}")
