"""exactrelu: linear regions of ReLU-family PyTorch networks, found in float, certified exactly."""

from __future__ import annotations

import logging

from .errors import (CertificateError, ExactReluError, InvalidInputError, RegionLimitError,
                     UnsupportedModelError, VerificationError)

__version__ = "0.1.0"

try:
    # numpy before torch: torch imports it from C and clears any error, a Ctrl-C included, so
    # that an interrupt while numpy loads would be lost (and torch would run without numpy)
    import numpy as _numpy  # noqa: F401
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
except KeyboardInterrupt:
    # Ctrl-C while the command line starts (importing torch takes seconds): its exit, not a
    # traceback (see exactrelu.cli)
    import os as _os
    import sys as _sys

    _argv = list(getattr(_sys, "orig_argv", ()))
    if _os.path.basename(_sys.argv[0]) == "exactrelu" or \
            any(a == "-m" and b == "exactrelu.cli" for a, b in zip(_argv, _argv[1:])):
        _sys.stderr.write("exactrelu: interrupted\n")
        _sys.stderr.flush()
        _os._exit(130)
    raise
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
