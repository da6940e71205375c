"""Exact analysis beyond counting: the region of a point, walks along segments, the dual graph,
local complexity and region statistics. Every number is exact (or a float with a stated rounding
beside its exact value); every region is a :class:`~exactrelu.certificate.Region` like a
certificate's."""

from __future__ import annotations

from .complexity import LocalComplexity, count_in_boxes, local_complexity
from .graph import ConstraintRef, decode_constraint, dual_graph, shortest_path
from .point import PointRegions, region_of
from .segment import SegmentCrossing, SegmentPiece, SegmentWalk, segment_regions
from .statistics import RegionStatistics, region_statistics, sqrt_float, summarize

__all__ = ["PointRegions", "region_of", "SegmentWalk", "SegmentPiece", "SegmentCrossing",
           "segment_regions", "ConstraintRef", "decode_constraint",
           "dual_graph", "shortest_path", "LocalComplexity", "local_complexity", "count_in_boxes",
           "RegionStatistics", "region_statistics", "summarize", "sqrt_float"]
