"""Model analysis: layer tables with output volumes, parameters, multiply-adds and receptive fields.

    from kerascnn.analysis import summarize, summary_for, block_summary, format_summary
    print(format_summary(summary_for("alexnet"), "table"))
    print(format_summary(block_summary("inception-reduced"), "markdown"))

Seeing inside a model (kerascnn.analysis.visualize; `kerascnn visualize ...`):

    heatmaps, probs = gradcam(model, images, class_index=None, layer=None)   # also method="gradcam++"
    kernels, layer = filters(model); maps = activations(model, image, ["conv1", "conv2"])
    pictures = maximize(model, "block3_conv1", channels=[0, 1, 2])

Importing this package does not import TensorFlow; building and summarising a model does.
"""
from kerascnn.analysis.blocks import BLOCKS, block_summary
from kerascnn.analysis.formats import FORMATS, format_summary
from kerascnn.analysis.receptive_field import Field
from kerascnn.analysis.summary import LayerRow, Summary, Totals, summarize, summary_for
from kerascnn.analysis.visualize import (activations, cam_model, filter_grid, filters, gradcam, maximize,
                                         resolve_model)

__all__ = ["BLOCKS", "FORMATS", "Field", "LayerRow", "Summary", "Totals", "activations", "block_summary",
           "cam_model", "filter_grid", "filters", "format_summary", "gradcam", "maximize", "resolve_model",
           "summarize", "summary_for"]
