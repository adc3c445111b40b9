"""The settings of `kerascnn visualize ...` and `kerascnn report`: one frozen dataclass per command.

Standard library only, so the CLI builds its flags and help from these without TensorFlow. Each is
resolved with `kerascnn.settings.resolve` (defaults < --config file < flags) and written into the
output folder's settings.json, so `--print-config` and `--config` work as for every command.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from kerascnn.analysis.visualize import NORMALIZE
from kerascnn.config import EVAL_SPLITS, RUN_TABLE_HELP, setting

MODEL_HELP = "A registry name (see `kerascnn models`) or a .keras file."
WEIGHTS_HELP = "With a registry name: none, a pretrained weight name (imagenet) or a weights file."
OUT_HELP = "The output folder; unset: runs/visualize-<what>-<model>-<time>/."


@dataclass(frozen=True)
class FiltersConfig:
    """`kerascnn visualize filters`: a conv layer's kernels as a grid of tiles."""

    model: str = setting("", MODEL_HELP)
    weights: Optional[str] = setting(None, WEIGHTS_HELP)
    layer: Optional[str] = setting(None, "The conv layer; unset: the first one.")
    normalize: str = setting("kernel", "Scale each kernel to its own largest |weight| (kernel) or all of them to "
                                       "the layer's (global); zero is mid-grey.", choices=NORMALIZE)
    max_filters: int = setting(96, "Show at most this many filters.", lo=1)
    out: Optional[str] = setting(None, OUT_HELP)


@dataclass(frozen=True)
class ActivationsConfig:
    """`kerascnn visualize activations`: one image's activation maps, a figure per layer."""

    model: str = setting("", MODEL_HELP)
    weights: Optional[str] = setting(None, WEIGHTS_HELP)
    image: str = setting("", "The image file.")
    layers: str = setting("", "Comma-separated layer names (see `kerascnn summary`), or a registry use such as style.")
    max_channels: int = setting(32, "Show the strongest this many channels of each layer.", lo=1)
    out: Optional[str] = setting(None, OUT_HELP)


@dataclass(frozen=True)
class GradcamConfig:
    """`kerascnn visualize gradcam`: Grad-CAM and Grad-CAM++ overlays, one PNG per image."""

    model: str = setting("", MODEL_HELP)
    weights: Optional[str] = setting(None, WEIGHTS_HELP)
    images: Optional[tuple] = setting(None, "The image files.")
    target_class: Optional[str] = setting(None, "The class to explain, an index or a name; unset: each image's "
                                                "predicted class.")
    layer: Optional[str] = setting(None, "The feature map; unset: the model's registry cam layer, else the last "
                                         "spatial map.")
    out: Optional[str] = setting(None, OUT_HELP)


@dataclass(frozen=True)
class MaximizeConfig:
    """`kerascnn visualize maximize`: images that excite chosen channels most, as a grid."""

    model: str = setting("", MODEL_HELP)
    weights: Optional[str] = setting(None, WEIGHTS_HELP)
    layer: str = setting("", "The layer whose channels to excite.")
    channels: str = setting("0-7", "Channels such as 0-7 or 3,5,9.")
    size: int = setting(128, "Image side for a model without a fixed input size.", lo=8)
    steps: int = setting(64, "Gradient-ascent steps.", lo=1)
    lr: float = setting(4.0, "Step length in pixel levels (the gradient is normalised).", lo=0.0, lo_open=True)
    jitter: int = setting(4, "Random shift in pixels at each step (regulariser).", lo=0)
    blur_sigma: float = setting(0.8, "Gaussian blur in pixels every --blur-every steps (regulariser; 0: none).",
                                lo=0.0)
    blur_every: int = setting(4, "Blur every this many steps.", lo=1)
    seed: int = setting(0, "Seeds the starting noise and the jitter.")
    out: Optional[str] = setting(None, OUT_HELP)


@dataclass(frozen=True)
class TokensConfig:
    """`kerascnn visualize tokens`: which words drove a text model's prediction (gradient x input)."""

    model: str = setting("", "A text model: a .keras file (such as a kim_cnn run's model) or a registry name.")
    weights: Optional[str] = setting(None, WEIGHTS_HELP)
    text: str = setting("", "The text to explain.")
    target_class: Optional[str] = setting(None, "The class to explain, an index or a name; unset: the predicted "
                                                "class.")
    out: Optional[str] = setting(None, OUT_HELP)


@dataclass(frozen=True)
class NgramsConfig:
    """`kerascnn visualize ngrams`: the n-grams that excite a text model's strongest filters most."""

    model: str = setting("", "A text model: a .keras file (such as a kim_cnn run's model) or a registry name.")
    weights: Optional[str] = setting(None, WEIGHTS_HELP)
    data: Optional[str] = setting(None, "The sentences: a text --data spec; unset: the data of the model's run "
                                        "(its config.json).")
    split: str = setting("val", "Which split of the data: train | val | test | all.",
                         choices=EVAL_SPLITS)
    text_column: Optional[str] = setting(None, RUN_TABLE_HELP["text_column"])
    label_column: Optional[str] = setting(None, RUN_TABLE_HELP["label_column"])
    label_threshold: Optional[float] = setting(None, RUN_TABLE_HELP["label_threshold"])
    filters: int = setting(10, "How many filters, strongest first (mean max activation x the l2 norm of the "
                               "filter's logits weights).", lo=1)
    top: int = setting(5, "Distinct n-grams shown per filter, largest activation first.", lo=1)
    max_examples: int = setting(2000, "Read at most this many sentences of the split.", lo=1)
    out: Optional[str] = setting(None, OUT_HELP)


@dataclass(frozen=True)
class VqaConfig:
    """`kerascnn visualize vqa`: which image cells and object pairs an image+question model's answer came from."""

    model: str = setting("", "An image+question model: a .keras file (such as a vqa_cnn_rn run's model).")
    image: str = setting("", "The image file.")
    question: str = setting("", "The question about the image.")
    pairs: int = setting(5, "CNN + RN: draw this many object pairs, strongest first.", lo=1)
    score: str = setting("norm", "CNN + RN: a pair's score, the norm of g's output for it (norm) or its "
                                 "contribution to the answer's logit through f (logit).", choices=("norm", "logit"))
    out: Optional[str] = setting(None, OUT_HELP)


@dataclass(frozen=True)
class ReportConfig:
    """`kerascnn report`: one self-contained HTML page for a run folder."""

    run_dir: str = setting("", "A run folder written by `kerascnn fit` or `finetune`.")
    cam_images: int = setting(8, "Validation images shown with Grad-CAM (0: none).", lo=0)
    top_losses: int = setting(12, "Misclassified validation images shown, largest loss first.", lo=0)
    max_examples: int = setting(2000, "Score at most this many validation images.", lo=1)
    sentences: int = setting(4, "A text model: validation sentences shown with their token saliency, this many "
                                "right and this many wrong (0: none).", lo=0)
    ngram_filters: int = setting(10, "A text model: its strongest filters shown with the n-grams that excite them "
                                     "most (0: none).", lo=0)
    out: Optional[str] = setting(None, "The HTML file; unset: report.html in the run folder.")
