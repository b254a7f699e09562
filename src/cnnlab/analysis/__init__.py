"""Explaining models: per-layer summaries (shapes, parameters, receptive fields, multiply-adds)."""

from cnnlab.analysis.receptive_field import Field
from cnnlab.analysis.summary import LayerRow, Summary, summarize

__all__ = ["Field", "LayerRow", "Summary", "summarize"]
