"""The case studies' published training recipes, as data: `--recipe NAME` is one layer of settings.

A recipe is nothing but settings (the names of `kerascnn fit`'s flags) with the paper they come from.
`kerascnn.settings` applies it as a layer over the model's own recipe and the app's defaults and
under a settings file and the flags, so any of its values can be overridden, and the run folder's
settings.json says of each value that it came from "recipe NAME". Standard library only.

What the papers did that is not a training setting is said in `notes` (evaluation by 10 crops is
`kerascnn evaluate`'s business; the builders' dropout already follows the papers).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Tuple


@dataclass(frozen=True)
class Recipe:
    name: str
    paper: str
    settings: Mapping[str, Any]
    notes: Tuple[str, ...] = field(default_factory=tuple)


RECIPES: Dict[str, Recipe] = {r.name: r for r in (
    Recipe("alexnet2012", "Krizhevsky, Sutskever & Hinton 2012, section 5", {
        "optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 128, "lr": 0.01,
        # "divided the learning rate by 10 when the validation error rate stopped improving"
        "schedule": "plateau", "epochs": 90,
        # 224x224 patches of the 256x256 images (a crop keeping 224/256 of each side) and reflections;
        # PCA colour augmentation with std 0.1
        "crop": 0.125, "hflip": True, "pca_jitter": 0.1,
    }, ("dropout 0.5 in fc6 and fc7: the builder's default",
        "10-crop testing (four corners and the centre, with reflections): kerascnn evaluate --tta 10crop",
        "weight decay is applied by the optimizer (decoupled); for SGD without momentum it equals the paper's L2")),
    Recipe("vgg2014", "Simonyan & Zisserman 2014, section 3.1", {
        "optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 256, "lr": 0.01,
        "schedule": "plateau", "epochs": 74,
        # scale jittering: training scale S in [256, 512], random 224x224 crops (224/S: 0.44 to 0.88 of
        # a side), approximated by a random crop losing up to half of each side; and flips
        "crop": 0.5, "hflip": True,
    }, ("dropout 0.5 in the first two fully connected layers: the builder's default",
        "random RGB colour shift: use --pca-jitter 0.1")),
    Recipe("resnet_cifar", "He, Zhang, Ren & Sun 2015, section 4.2", {
        "optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 128, "lr": 0.1,
        # /10 at 32k and 48k of 64k iterations: at 50% and 75% of training (182 epochs of 45k images)
        "schedule": "multistep", "milestones": (0.5, 0.75), "epochs": 182,
        # 4 pixels padded on each side and a random 32x32 crop: a random shift of up to 4/32, zero-padded
        "translate": 0.125, "hflip": True,
    }, ("the paper holds out 5k of the 50k training images for validation: --val-split 0.1",)),
    Recipe("inception_v3", "Szegedy, Vanhoucke, Ioffe, Shlens & Wojna 2016, section 8", {
        "optimizer": "rmsprop", "rho": 0.9, "epsilon": 1.0, "lr": 0.045,
        "schedule": "exponential", "decay_rate": 0.94, "decay_epochs": 2.0,
        "label_smoothing": 0.1, "clip_norm": 2.0, "batch_size": 32, "epochs": 100,
        # the auxiliary classifier's loss weight of TF-slim's reference Inception v3 training
        "model_args": {"aux_logits": True}, "aux_weight": 0.4,
    }, ("batch 32 per replica on 50 replicas in the paper; --batch-size is global here",
        "the auxiliary classifier (aux_logits) needs googlenet or inception_v3")),
    Recipe("kim2014", "Kim 2014, sections 2.1 and 3.1", {
        # "stochastic gradient descent over shuffled mini-batches with the Adadelta update rule",
        # Zeiler's rho 0.95 and epsilon 1e-6 at rate 1.0; mini-batches of 50
        "optimizer": "adadelta", "lr": 1.0, "rho": 0.95, "epsilon": 1e-6, "schedule": "constant",
        "batch_size": 50, "epochs": 25,
        # early stopping on a dev set: a random 10% of the training data
        "early_stopping": 5, "early_stopping_on": "val_accuracy", "val_split": 0.1,
    }, ("dropout 0.5 on the penultimate layer and the l2 max-norm 3 on the output weights: kim_cnn's defaults",
        "word vectors: --model-arg variant=static|non_static|multichannel with --model-arg embeddings=FILE",
        "data without a test split: Kim reports 10-fold cross-validation")),
)}
