"""Segmentation for the pipeline: re-exports :mod:`deft_core.segment` (the pure SAM wrapper lives in
``deft_core`` so the robot process can use it without Ray or ``pipelines``)."""

from deft_core.segment import SEGMENT_BACKENDS, MaskResult, SamSegmenter, make_segmenter

__all__ = ["SEGMENT_BACKENDS", "MaskResult", "SamSegmenter", "make_segmenter"]
