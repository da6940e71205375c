"""exactrelu: linear regions of ReLU-family PyTorch networks, found in float, certified exactly."""

from __future__ import annotations

import logging

from .capture import Program, capture
from .errors import (CertificateError, ExactReluError, InvalidInputError, RegionLimitError,
                     UnsupportedModelError, VerificationError)
from .graphs import AffineMaps, ExactAffineMaps, affine_maps, exact_affine_maps, exact_forward
from .rules import AffineRule, FloatMap, PiecewiseRule, Rule, register_rule
from .domain import Box, Polytope, RealSpace, Slice
from .certificate import Certificate
from .verify import verify
from .check import check
# boundaries, level sets and topology of decision regions and sublevel sets (issue 19)
from .boundary import BoundaryCell, BoundaryComplex, Measure, decision_boundary, level_set
from .boundary_check import check_boundary
from .topology import Topology, decision_region_topology, sublevel_topology, superlevel_topology

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ExactReluError", "InvalidInputError", "UnsupportedModelError", "RegionLimitError",
    "VerificationError", "CertificateError",
    "Program", "capture", "register_rule", "Rule", "AffineRule", "PiecewiseRule", "FloatMap",
    "AffineMaps", "ExactAffineMaps", "affine_maps", "exact_affine_maps", "exact_forward",
    "Box", "Polytope", "RealSpace", "Slice", "Certificate", "verify", "check",
    # boundaries, level sets and topology (issue 19)
    "BoundaryCell", "BoundaryComplex", "Measure", "decision_boundary", "level_set", "check_boundary",
    "Topology", "decision_region_topology", "sublevel_topology", "superlevel_topology",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
