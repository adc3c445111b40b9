"""Model analysis: layer tables with output volumes, parameters, multiply-adds and receptive fields.

    from kerascnn.analysis import summarize, summary_for, block_summary, format_summary
    print(format_summary(summary_for("alexnet"), "table"))
    print(format_summary(block_summary("inception-reduced"), "markdown"))

Importing this package does not import TensorFlow; building and summarising a model does.
"""
from kerascnn.analysis.blocks import BLOCKS, block_summary
from kerascnn.analysis.formats import FORMATS, format_summary
from kerascnn.analysis.receptive_field import Field
from kerascnn.analysis.summary import LayerRow, Summary, Totals, summarize, summary_for

__all__ = ["BLOCKS", "FORMATS", "Field", "LayerRow", "Summary", "Totals", "block_summary", "format_summary",
           "summarize", "summary_for"]
