"""Benchmark evaluation: OTB / GOT-10k loaders, toolkit-identical metrics, a resumable
one-pass runner for our trackers and OpenCV's, and reports (tables, CSV/JSON, plots).

Entry point for users: ``siamtrack eval otb|got10k|report`` (:mod:`tracker.eval.cli`).
"""
from .datasets import AnnotationError, Sequence, load_got10k, load_otb

__all__ = ["AnnotationError", "Sequence", "load_got10k", "load_otb"]
