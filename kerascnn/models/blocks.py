"""A backbone's blocks, and unfreezing the top ones for fine-tuning.

Fine-tuning's second phase trains the new head together with the top K blocks of the pretrained
backbone (ULMFiT's gradual unfreezing, keras-io's "unfreeze the top layers" recipe), each block
possibly at its own learning rate (`kerascnn.training.layerwise`). A "block" is the unit a paper
draws: a residual block, an inception module, a VGG stage, one conv + BN + activation of a plain
stem. They are found from the layer graph, so every network in the registry (and a loaded `.keras`
model) gets them without a per-model table:

1. Cut points: the layers every path from the input to the main output passes through. In a plain
   chain every layer is one; inside a residual block or an inception module none is, because the
   shortcut or a parallel branch jumps over it. The segments between consecutive cut points are the
   candidate blocks.
2. Consecutive segments with the same name-derived id (`BLOCK_IDS`: "conv4_block6", "block_16",
   "block5", "mixed9", ...) are one block: a non-residual MobileNetV2 bottleneck or a VGG stage is a
   chain of cut points that its names tie together.
3. A segment with no weighted layer other than BatchNormalization (an activation after an add, a
   pooling, "preprocess", a padding) joins the block below it; the bottom ones join the first block.

BatchNormalization layers always stay frozen: Keras 3 runs a BN layer with trainable=False in
inference mode, so a small data set's batch statistics never replace the pretrained ones.
"""
from __future__ import annotations

import difflib
import heapq
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import keras

from kerascnn.runtime.compat import producer_node, sequential_graph
from kerascnn.errors import SettingError, UnknownNameError

HEAD_LAYERS = ("head_dropout", "logits", "predictions")
AUX_PREFIX = "aux"  # auxiliary heads (GoogLeNet "aux1_*", Inception v3 "aux_*")

# Name-derived block ids, tried in order; a layer's id is the first match's group 1. Anchored at the
# start of the name: Keras's and kerascnn's builders name every layer of a block from one prefix.
BLOCK_IDS = tuple(re.compile(p) for p in (
    r"^(conv\d+_block\d+)(?:_|$)",  # ResNet v1/v2 and kerascnn's ResNets: conv4_block6_2_conv
    r"^(block\d+_\d+)(?:_|$)",  # Inception-ResNet v2: block35_1_conv, block17_3_ac
    r"^(block_?\d+)(?:_|$)",  # MobileNetV2 block_16_expand; VGG / Xception block5_conv3
    r"^(mixed_?\d+[a-z]?)(?:_|$)",  # Inception v3 mixed9, mixed9_0; Inception v4 / -ResNet mixed_6a_b1_0_conv
    r"^(inception_\d+[a-z])(?:_|$)",  # GoogLeNet inception_4e_3x3
    r"^(expanded_conv)(?:_|$)",  # MobileNetV2's first bottleneck
    r"^(conv_(?:dw|pw|pad)_\d+)(?:_|$)",  # MobileNet conv_dw_3, conv_pw_3 (see _block_id)
    r"^(?!conv\dd_)(conv\d+[a-z]?)(?:_|$)",  # stems: conv1_pad + conv1_conv + conv1_bn; GoogLeNet conv2_3x3(_reduce)
))

Which = Union[str, int]


class Block(NamedTuple):
    name: str  # the block's name-derived id ("block_16", "conv5_block3", "mixed9") or its first weighted layer's name
    layers: Tuple[str, ...]  # the layer names, in model order


def backbone_blocks(model: keras.Model) -> List[Block]:
    """The backbone's blocks, bottom to top.

    Every layer except the inputs, the head (`HEAD_LAYERS`) and auxiliary heads (names starting with
    "aux") belongs to exactly one block. See the module docstring for the rule.

    Args:
        model: a built functional or Sequential keras.Model.

    Returns:
        The blocks, input side first; each names its layers in model order.
    """
    graph = _graph_of(model)
    order, children = _main_path(graph)
    position = {op_id: p for p, (op_id, _) in enumerate(order)}
    reach, segments, current = -1, [], []
    for p, (op_id, op) in enumerate(order):
        # `op` is a cut point when no edge from below it lands above it.
        cut = reach <= p
        reach = max([reach, p] + [position[c] for c in children.get(op_id, ()) if c in position])
        if _in_backbone(op):
            current.append(op.name)
        if cut and current:
            segments.append(current)
            current = []
    if current:
        segments.append(current)
    layers = {layer.name: layer for layer in graph.layers}
    blocks = _merge(segments, layers)
    return _with_off_path_layers(graph, blocks, layers)


def unfreeze(model: keras.Model, which: Which) -> List[Tuple[str, ...]]:
    """Make the head and the top blocks trainable, everything else frozen; BatchNorm always frozen.

    Args:
        model: a model ending in the head `HEAD_LAYERS` (auxiliary heads, "aux*", train too).
        which: "all"; an int K >= 0 or its string "K": the top K blocks (0: the head only; more than
            there are: all); or "from:LAYER": LAYER's block and every block above it.

    Returns:
        The trainable groups, top down, for layer-wise learning rates: [the head's layers, the top
        unfrozen block's layers, the next block's, ...], each listing only the layers that have
        trainable weights (a block left with none is omitted).

    Raises:
        SettingError: (param "unfreeze") a `which` of another form, a negative K.
        UnknownNameError: (param "unfreeze") from:LAYER with a name no layer has, with close matches.
    """
    blocks = backbone_blocks(model)
    count = _count(model, blocks, which)
    top = blocks[len(blocks) - count:] if count else []
    graph = _graph_of(model)
    heads = [layer.name for layer in graph.layers if _is_head(layer.name)]
    trainable = set(heads).union(*(b.layers for b in top))
    model.trainable = True  # resets the flags of nested models' layers too
    for layer in graph.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            layer.trainable = layer.name in trainable
    _freeze_batchnorm(graph)
    layers = {layer.name: layer for layer in graph.layers}
    groups = [tuple(n for n in heads if layers[n].trainable_weights)]
    for block in reversed(top):
        group = tuple(n for n in block.layers if layers[n].trainable_weights)
        if group:
            groups.append(group)
    return groups


# ------------------------------------------------------------------------------------------------
# The graph


def _graph_of(model: keras.Model):
    """The functional graph of `model` (a Sequential model's inner one)."""
    graph = sequential_graph(model) if isinstance(model, keras.Sequential) else model
    if graph is None or not getattr(graph, "outputs", None):
        raise ValueError(f"{model.name}: blocks need a built functional or Sequential model with an input. "
                         f"Received: model={model!r}")
    return graph


def _main_path(graph) -> Tuple[List[Tuple[int, object]], Dict[int, set]]:
    """The operations the main output depends on, topologically sorted (ties in the model's own
    layer order, so blocks list their layers as the model does), and each operation's children.

    Operations are keyed by id: a Keras op used functionally (`x + y`) is a node of the graph but not
    a layer, and only layers have unique names.
    """
    main = _main_output(graph)
    ops, parents, children = {}, {}, {}
    stack, seen = [producer_node(main)], set()
    while stack:  # iterative: ResNet-152 is deeper than Python's recursion limit
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        op = node.operation
        ops[id(op)] = op
        parents.setdefault(id(op), set())
        for t in node.input_tensors:
            parent = producer_node(t)
            if parent.operation is not op:  # a layer called twice in a row is one graph node
                parents[id(op)].add(id(parent.operation))
                children.setdefault(id(parent.operation), set()).add(id(op))
            stack.append(parent)
    rank = {id(op): i for i, op in enumerate(getattr(graph, "operations", graph.layers))}
    waiting = {k: len(v) for k, v in parents.items()}
    ready = [(rank.get(k, len(rank)), k) for k, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, k = heapq.heappop(ready)
        order.append((k, ops[k]))
        for c in children.get(k, ()):
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, (rank.get(c, len(rank)), c))
    if len(order) < len(ops):  # a cycle through a shared layer: fall back to the model's order
        placed = {k for k, _ in order}
        order += sorted(((k, op) for k, op in ops.items() if k not in placed), key=lambda e: rank.get(e[0], 0))
    return order, children


def _main_output(graph):
    """The "predictions" output where there are several (the others are auxiliary heads)."""
    for t in graph.outputs:
        if producer_node(t).operation.name == "predictions":
            return t
    return graph.outputs[0]


def _is_head(name: str) -> bool:
    return name in HEAD_LAYERS or name.startswith(AUX_PREFIX)


def _in_backbone(op) -> bool:
    return isinstance(op, keras.layers.Layer) and not isinstance(op, keras.layers.InputLayer) \
        and not _is_head(op.name)


def _is_core(layer) -> bool:
    """A layer that makes a block: weighted and not BatchNorm (BN only rescales its conv's output)."""
    return bool(layer.weights) and not isinstance(layer, keras.layers.BatchNormalization)


def _block_id(name: str) -> Optional[str]:
    for pattern in BLOCK_IDS:
        m = pattern.match(name)
        if m:
            # MobileNet's depthwise-separable unit n is conv_pad_n + conv_dw_n + conv_pw_n.
            return re.sub(r"^conv_(?:dw|pw|pad)_", "conv_dw_pw_", m.group(1))
    return None


# ------------------------------------------------------------------------------------------------
# Segments into blocks


def _merge(segments: Sequence[List[str]], layers: Dict[str, object]) -> List[Block]:
    """Rules 2 and 3 of the module docstring."""
    # A segment's id is its last named layer's: a residual segment ends in an auto-named "add" in
    # Xception, and Inception v3's modules start with auto-named conv2d_NN.
    tagged = []
    for seg in segments:
        ids = [i for i in map(_block_id, seg) if i]
        tag = ids[-1] if ids else None
        if tagged and tag is not None and tagged[-1][0] == tag:
            tagged[-1][1].extend(seg)
        else:
            tagged.append((tag, list(seg)))
    blocks: List[Tuple[Optional[str], List[str]]] = []
    pending: List[str] = []  # weightless segments below the first block
    for tag, seg in tagged:
        core = [n for n in seg if _is_core(layers[n])]
        if not core:
            (blocks[-1][1] if blocks else pending).extend(seg)
        else:
            blocks.append((tag or core[0], pending + seg))
            pending = []
    if pending:  # no weighted layer at all: one block of everything
        blocks.append((pending[-1], pending))
    order = {name: i for i, name in enumerate(layers)}
    return [Block(name, tuple(sorted(seg, key=order.__getitem__))) for name, seg in blocks]


def _with_off_path_layers(graph, blocks: List[Block], layers: Dict[str, object]) -> List[Block]:
    """Blocks with the layers the main output does not depend on (and that are not auxiliary heads)
    added to the block of their highest parent, so that every layer has a block."""
    where = {n: i for i, b in enumerate(blocks) for n in b.layers}
    extra: Dict[int, List[str]] = {}
    for layer in graph.layers:
        if layer.name in where or not _in_backbone(layer):
            continue
        parents = [producer_node(t).operation.name for t in _inputs_of(layer)]
        i = max([where[p] for p in parents if p in where], default=0)
        if not blocks:
            blocks.append(Block(layer.name, ()))
        where[layer.name] = i
        extra.setdefault(i, []).append(layer.name)
    if not extra:
        return blocks
    order = {name: i for i, name in enumerate(layers)}
    return [Block(b.name, tuple(sorted(b.layers + tuple(extra.get(i, ())), key=order.__getitem__)))
            for i, b in enumerate(blocks)]


def _inputs_of(layer) -> list:
    inputs = layer.input
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


# ------------------------------------------------------------------------------------------------
# Unfreezing


def _count(model, blocks: List[Block], which: Which) -> int:
    """How many top blocks `which` unfreezes."""
    bad = SettingError("unfreeze", f"unfreeze must be all, a number of blocks K >= 0, or from:LAYER. "
                                   f"Received: unfreeze={which!r}")
    if isinstance(which, bool):
        raise bad
    if isinstance(which, str):
        text = which.strip()
        if text == "all":
            return len(blocks)
        if text.startswith("from:") and text[5:]:
            return _count_from(model, blocks, text[5:])
        if not text.isdigit():
            raise bad
        which = int(text)
    if not isinstance(which, int) or which < 0:
        raise bad
    return min(which, len(blocks))


def _count_from(model, blocks: List[Block], name: str) -> int:
    for i, block in enumerate(blocks):
        if name in block.layers:
            return len(blocks) - i
    names = [layer.name for layer in _graph_of(model).layers]
    if name in names:  # an input (everything above it) or a head layer (nothing below it)
        return 0 if _is_head(name) else len(blocks)
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownNameError("unfreeze", f"Unknown layer {name!r} in model {model.name!r} for unfreeze=from:LAYER."
                                       f"{hint} kerascnn.models.features.list_layers(model) lists its layers.")


def _freeze_batchnorm(model) -> None:
    """Freeze every BatchNormalization layer, in nested models too."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        elif isinstance(layer, keras.Model):
            _freeze_batchnorm(layer)
