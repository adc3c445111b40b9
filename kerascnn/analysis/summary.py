"""Layer-by-layer tables of a Keras model: output volume, parameters, multiply-adds, receptive field.

    summary = summarize(model)                       # any functional or Sequential model
    summary = summary_for("alexnet")                 # a registered model at its paper's input
    print(format_summary(summary, "table"))          # see kerascnn.analysis.formats

The graph is walked from the inputs in topological order (branch by branch, so an Inception module
reads 1x1, then 3x3 reduce -> 3x3, ...). Nested models are walked too and their layers listed as
`outer/inner`; a layer called twice is listed twice, its parameters counted once.

What is counted (one example, no batch: an image, or for a text model one sentence of its
`sequence_length` tokens, the model's own tokenizer padding or cutting every text to that length):
- multiply-adds (MACs) of convolutions (groups, dilation and strides included; depthwise, separable,
  transposed) and Dense layers, as in the papers' tables: `H_out * W_out * C_out * k*k * C_in/groups`.
  Biases, activations, pooling, Add and Concatenate count 0. BatchNormalization counts 0 as well:
  at inference it folds into the preceding convolution's weights and bias. A layer with a kernel but
  no rule here (EinsumDense, recurrent layers) counts 0 and is listed in `Summary.uncounted`.
- parameters: all weights, trainable and not (BatchNormalization's moving statistics are not).
- receptive field: see `kerascnn.analysis.receptive_field`; in a text model it counts tokens from
  the tokenizer ("TextVectorization") on, so a width-3 convolution's field is a 3-gram.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from kerascnn.analysis.receptive_field import Field, layer_field, rule_for
from kerascnn.runtime.compat import keras_history, producer_node, sequential_graph

Shape = Tuple[Optional[int], ...]


@dataclass(frozen=True)
class LayerRow:
    """One call of one layer."""

    name: str  # the layer's name; `outer/inner` inside a nested model, `name#2` for a second call
    kind: str  # the Keras class name
    output_shape: Shape  # of the (first) output, without the batch axis: (H, W, C)
    params: int  # all weights of the layer (0 on a repeated call of a shared layer)
    trainable_params: int
    macs: int  # multiply-adds of this call for one example (Summary.example)
    rf: Tuple[int, ...]  # receptive field per spatial axis, in input pixels (tokens in a text model)
    jump: Tuple[Fraction, ...]  # input pixels (tokens) between neighbouring output units (product of strides)
    inputs: Tuple[str, ...]  # rows whose outputs this call reads


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    macs: int

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params

    def to_dict(self) -> Dict[str, int]:
        return {"params": self.params, "trainable_params": self.trainable_params,
                "non_trainable_params": self.non_trainable_params, "macs": self.macs}

    @classmethod
    def of(cls, rows: Sequence[LayerRow]) -> "Totals":
        return cls(sum(r.params for r in rows), sum(r.trainable_params for r in rows), sum(r.macs for r in rows))


@dataclass(frozen=True)
class Summary:
    """A model's table: `rows` in graph order, `totals`, optional named groups of rows (branches)."""

    name: str
    input_shapes: Tuple[Shape, ...]  # without the batch axis
    rows: Tuple[LayerRow, ...]
    totals: Totals
    groups: Dict[str, Totals] = field(default_factory=dict)  # e.g. an Inception module's branches
    notes: Tuple[str, ...] = ()  # printed under the table
    uncounted: Tuple[str, ...] = ()  # layers with a kernel whose MACs no rule here counts
    # What one forward pass is, the unit of `macs`: "image", "sentence of 64 tokens" (a text model),
    # "example" (any other input, e.g. vectors).
    example: str = "image"

    def row(self, name: str) -> LayerRow:
        """The row of layer `name` (its first call)."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"No layer {name!r} in the summary of {self.name}.")

    def to_dict(self) -> dict:
        """Plain JSON-ready data: shapes as lists, jumps as numbers."""
        return {
            "name": self.name,
            "input_shapes": [list(s) for s in self.input_shapes],
            "rows": [{"name": r.name, "type": r.kind, "output_shape": list(r.output_shape),
                      "params": r.params, "trainable_params": r.trainable_params, "macs": r.macs,
                      "rf": list(r.rf), "jump": [number(j) for j in r.jump], "inputs": list(r.inputs)}
                     for r in self.rows],
            "totals": self.totals.to_dict(),
            "groups": {label: t.to_dict() for label, t in self.groups.items()},
            "notes": list(self.notes),
            "uncounted": list(self.uncounted),
            "example": self.example,
        }


def number(x: Fraction):
    """A Fraction as an int when whole, else a float (for JSON and tables)."""
    return int(x) if x.denominator == 1 else float(x)


def group_totals(summary: Summary, groups: Mapping[str, Sequence[str]]) -> Dict[str, Totals]:
    """Totals of named groups of layers, e.g. {"3x3 branch": ["m_3x3_reduce", "m_3x3"]}; names the
    model lacks are skipped."""
    members = {label: set(names) for label, names in groups.items()}
    return {label: Totals.of([r for r in summary.rows if r.name in names]) for label, names in members.items()}


# ----------------------------------------------------------------------------------------------
# Multiply-adds per layer type: (layer, input shapes, output shapes) -> MACs, by class name.


def _elements(shape: Shape) -> int:
    return math.prod(shape[1:])


def _kernel_macs(layer, ins, outs) -> int:
    # Conv kernels are (*k, C_in / groups, C_out) and Dense kernels (C_in, C_out): every output
    # element costs prod(kernel.shape[:-1]) multiply-adds, whatever the strides or dilation.
    return _elements(outs[0]) * math.prod(layer.kernel.shape[:-1])


def _depthwise_macs(layer, ins, outs) -> int:
    # Kernel (*k, C_in, multiplier): each output element is one k x k window of one channel.
    return _elements(outs[0]) * math.prod(layer.kernel.shape[:-2])


def _separable_macs(layer, ins, outs) -> int:
    # Depthwise (*k, C_in, m) then pointwise 1x1 from C_in*m to C_out channels.
    *window, c_in, mult = layer.depthwise_kernel.shape
    c_out = layer.pointwise_kernel.shape[-1]
    positions = _elements(outs[0]) // c_out
    return positions * c_in * mult * (math.prod(window) + c_out)


def _transposed_macs(layer, ins, outs) -> int:
    # Kernel (*k, C_out, C_in): every input element is scattered into k x k x C_out outputs.
    return _elements(ins[0]) * math.prod(layer.kernel.shape[:-1])


def _lstm_macs(layer, ins, outs) -> int:
    # Every step: four gates, each a (D + U) x U product of [x_t, h_{t-1}].
    steps, dim = ins[0][1], ins[0][2]
    return int(steps) * 4 * layer.units * (int(dim) + layer.units)


def _pairwise_macs(layer, ins, outs) -> int:
    # kerascnn.models.vqa.PairwiseDense: W_i o and W_j o once per object, W_q q once; the pairs only add.
    (_, n, d), (_, q) = ins[0], ins[1]
    return (2 * int(n) * int(d) + int(q)) * layer.units


_MAC_RULES: Dict[str, Callable] = {
    **dict.fromkeys(("Conv1D", "Conv2D", "Conv3D", "Dense"), _kernel_macs),
    "LSTM": _lstm_macs, "PairwiseDense": _pairwise_macs,
    **dict.fromkeys(("DepthwiseConv1D", "DepthwiseConv2D"), _depthwise_macs),
    **dict.fromkeys(("SeparableConv1D", "SeparableConv2D"), _separable_macs),
    **dict.fromkeys(("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"), _transposed_macs),
}


# ----------------------------------------------------------------------------------------------
# The graph walk


# Layers that turn strings into a sequence of token ids: a text model's "pixels" start here.
_TOKENIZERS = ("TextVectorization",)


class _Value(NamedTuple):
    spec: object  # a KerasTensor with the shape this walk computed
    field: Field
    source: str  # the row that produced it


def summarize(model, input_shape: Optional[Sequence] = None) -> Summary:
    """Summarise a functional or Sequential Keras model (keras.applications models included).

    Args:
        model: the model; its input sizes must be known, or given as `input_shape`.
        input_shape: (H, W, C) to evaluate the model at instead of its own input size (a list of
            shapes for a model with several inputs).
    """
    import keras  # imported on use, so that `kerascnn --help` needs no TensorFlow

    graph = _graph_of(model, keras)
    if graph is None:
        raise ValueError(f"summarize needs a functional model, or a Sequential one that starts with a "
                         f"keras.Input (a subclassed model has no graph until it runs). "
                         f"Received: model={model.name!r} of type {type(model).__name__}")
    specs = _input_specs(graph, input_shape, keras)
    walk = _Walk(keras)
    values = {}
    for tensor, spec in zip(graph.inputs, specs):
        layer = keras_history(tensor).operation
        field = Field.pixel(1 if _is_id_sequence(spec) else max(len(spec.shape) - 2, 0))
        values[id(tensor)] = _Value(spec, field, walk.add(layer, "", [], [spec.shape], field))
    walk.run(graph, values, prefix="")
    rows = tuple(walk.rows)
    example, notes = _example(specs, rows)
    return Summary(name=model.name, input_shapes=tuple(tuple(s.shape[1:]) for s in specs), rows=rows,
                   totals=Totals.of(rows), notes=notes, uncounted=tuple(walk.uncounted), example=example)


def _is_id_sequence(spec) -> bool:
    """A (batch, T) input of integers: a sequence of class ids (audio's mu-law samples), each id one
    "pixel" of a 1-D input, so the convolutions over its embedding have fields in samples."""
    return len(spec.shape) == 2 and "int" in str(spec.dtype)


def _example(specs, rows: Sequence[LayerRow]) -> Tuple[str, Tuple[str, ...]]:
    """What one forward pass is ("image", "sentence of N tokens", or "example" for any other input,
    an image and a question say), and a note where fields count tokens."""
    images = all(len(s.shape) == 4 for s in specs)  # (batch, H, W, C)
    if not any(str(s.dtype) == "string" for s in specs):
        return ("image" if images else "example"), ()
    lengths = {r.output_shape[0] for r in rows if r.kind in _TOKENIZERS and r.output_shape}
    tokens = lengths.pop() if len(lengths) == 1 and None not in lengths else None
    length = f"to {tokens} tokens " if tokens else ""
    notes = (f"RF and Jump count tokens from the tokenizer on; it pads or cuts every text {length}(sequence_length).",)
    if len(specs) > 1:
        return "example", notes
    return (f"sentence of {tokens} tokens" if tokens else "sentence"), notes


def summary_for(name: str, input_shape: Optional[Sequence[int]] = None, num_classes: Optional[int] = None,
                **overrides) -> Summary:
    """Build the registered model `name` (weights=None) and summarise it.

    `input_shape` and `num_classes` default to the registry's (the paper's input, 1000 classes);
    other keyword arguments go to the builder (`include_top=False`, `batch_norm=True`, ...).
    """
    from kerascnn.models.registry import create_model, get_spec  # the model zoo imports TensorFlow

    audio = get_spec(name).inputs == "audio"
    if input_shape is not None:
        overrides["input_shape"] = tuple(int(s) for s in input_shape)
    elif audio:  # an audio model takes clips of any length: count one training crop
        from kerascnn.data.audio_pipeline import DEFAULT_CLIP_SAMPLES

        overrides["input_shape"] = (DEFAULT_CLIP_SAMPLES,)
    if num_classes is not None:
        overrides["num_classes"] = int(num_classes)
    summary = summarize(create_model(name, **overrides))
    return _with_audio_field(summary) if audio else summary


def _with_audio_field(summary: Summary) -> Summary:
    """An audio model's summary counted per clip, with its output's receptive field in samples and
    in milliseconds at the data's rate (the walk's field of the last layer, from the built layers)."""
    import dataclasses

    from kerascnn.data.audio import SAMPLE_RATE

    samples = summary.rows[-1].rf[0] if summary.rows and summary.rows[-1].rf else None
    length = summary.input_shapes[0][0] if summary.input_shapes and summary.input_shapes[0] else None
    notes = list(summary.notes)
    if samples:
        notes.append(f"Receptive field: {samples:,} samples ({1000 * samples / SAMPLE_RATE:,.1f} ms at "
                     f"{SAMPLE_RATE // 1000} kHz); RF counts samples of the audio input.")
    return dataclasses.replace(summary, notes=tuple(notes),
                               example=f"clip of {length:,} samples" if length else summary.example)


def _graph_of(op, keras):
    """The functional graph to walk inside `op`, or None for a plain layer."""
    if isinstance(op, keras.Sequential):
        return sequential_graph(op)  # Keras keeps a Sequential's graph inside once built
    return op if isinstance(op, keras.Function) else None


def _input_specs(graph, input_shape, keras) -> List:
    if input_shape is None:
        specs = list(graph.inputs)
    else:
        shapes = [input_shape] if isinstance(input_shape[0], int) else list(input_shape)
        if len(shapes) != len(graph.inputs):
            raise ValueError(f"The model has {len(graph.inputs)} inputs. Received: input_shape={input_shape}")
        specs = [keras.KerasTensor((None, *map(int, s)), dtype=t.dtype) for s, t in zip(shapes, graph.inputs)]
    for spec in specs:
        if None in spec.shape[1:]:
            raise ValueError(f"Counting multiply-adds needs a fixed input size; pass input_shape=(H, W, C). "
                             f"Received: input_shape={tuple(spec.shape[1:])}")
    return specs


def _topological_nodes(graph) -> List:
    """The graph's nodes, each after its inputs, depth first from the outputs: each branch of a
    multi-branch block stays together, in the order the block joins them."""
    inputs = {id(t) for t in graph.inputs}
    order, done = [], set()
    stack = [(producer_node(t), False) for t in reversed(graph.outputs) if id(t) not in inputs]
    while stack:  # iterative post-order: ResNet-152 is deeper than Python's recursion limit
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((producer_node(t), False) for t in reversed(node.input_tensors) if id(t) not in inputs)
    return order


class _Walk:
    """Rows collected while walking one model (and the models nested in it)."""

    def __init__(self, keras):
        self.keras = keras
        self.rows: List[LayerRow] = []
        self.uncounted: List[str] = []
        self.calls: Dict[int, int] = {}  # id(layer) -> calls seen so far

    def run(self, graph, values: Dict[int, _Value], prefix: str) -> None:
        for node in _topological_nodes(graph):
            ins = [values[id(t)] for t in node.input_tensors]
            op = node.operation
            inner = _graph_of(op, self.keras)
            if inner is not None:  # a nested model: walk its graph on this call's inputs
                inner_values = {id(t): v for t, v in zip(inner.inputs, ins)}
                self.run(inner, inner_values, f"{prefix}{op.name}/")
                outs = [inner_values[id(t)] for t in inner.outputs]
            else:
                specs = self._output_specs(node, ins)
                field = layer_field(op, [v.field for v in ins], [v.spec.shape for v in ins],
                                    [s.shape for s in specs])
                if type(op).__name__ in _TOKENIZERS and len(specs[0].shape) == 2:
                    field = Field.pixel(1)  # each token id is one "pixel" of the sentence
                name = self.add(op, prefix, ins, [s.shape for s in specs], field)
                outs = [_Value(s, field, name) for s in specs]
            for tensor, value in zip(node.outputs, outs):
                values[id(tensor)] = value

    def _output_specs(self, node, ins: Sequence[_Value]) -> List:
        recorded = node.input_tensors
        if all(v.spec.shape == t.shape for v, t in zip(ins, recorded)):
            return list(node.outputs)
        # Evaluated at another size than the model was built at (input_shape=, or a nested model
        # built for any size): let the layer compute its output shape.
        args, kwargs = node.arguments.fill_in({id(t): v.spec for t, v in zip(recorded, ins)})
        return self.keras.tree.flatten(node.operation.compute_output_spec(*args, **kwargs))

    def add(self, layer, prefix: str, ins: Sequence[_Value], out_shapes: Sequence[Shape], field: Field) -> str:
        call = self.calls.get(id(layer), 0) + 1
        self.calls[id(layer)] = call
        name = f"{prefix}{layer.name}" + (f"#{call}" if call > 1 else "")
        first = call == 1
        rule = rule_for(_MAC_RULES, layer)
        in_shapes = [v.spec.shape for v in ins]
        macs = rule(layer, in_shapes, out_shapes) if rule and ins else 0
        # Not every node is a layer: an op (a mask's not_equal) has no weights.
        weights, trainable = getattr(layer, "weights", ()), getattr(layer, "trainable_weights", ())
        if rule is None and first and any(w.name == "kernel" for w in weights):
            self.uncounted.append(name)
        self.rows.append(LayerRow(
            name=name, kind=type(layer).__name__, output_shape=tuple(out_shapes[0][1:]),
            params=_size(weights) if first else 0,
            trainable_params=_size(trainable) if first else 0,
            macs=int(macs), rf=field.size, jump=field.jump, inputs=tuple(v.source for v in ins)))
        return name


def _size(weights) -> int:
    return sum(math.prod(w.shape) for w in weights)
