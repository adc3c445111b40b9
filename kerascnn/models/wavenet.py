"""WaveNet (van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio"), conditioned as
NSynth's (Engel et al. 2017): a causal model of 8-bit mu-law audio, one 256-way softmax per sample.

Takes {"audio": (B, T) int32 mu-law classes, "instrument": (B,) int32, "pitch": (B, T) int32}
(kerascnn.data.audio_pipeline's batches; "instrument" only when `num_instruments` > 0, "pitch" only
when `pitch_classes` > 0) and gives (B, T, 256) probabilities: position t, which has seen samples
0..t, predicts sample t + 1.

    audio -> "input_embedding" (256 classes -> residual_channels; the same as a one-hot input times
             a 1x1 kernel) -> "causal_conv" (width 2, causal)
    then for every stack s and dilation d in 1, 2, 4, .. 2^(layers_per_stack - 1), the layer
    "stack{s}_d{d}":
        z = tanh(W_f * x + V_f^T h + U_f * y) . sigmoid(W_g * x + V_g^T h + U_g * y)   (paper eq. 2, 3)
            "_filter", "_gate": dilated causal convolutions of width `kernel_size`;
            "_filter_global", "_gate_global": V^T h, the instrument embedding h ("instrument_embedding")
                through a Dense layer, the same at every time step;
            "_filter_local", "_gate_local": U * y, the pitch vectors y ("pitch_embedding": a Dense
                layer over the keys' PitchFeatures "pitch_features", or with pitch_conditioning=
                "embedding" a row per key; with `period_taps`, plus "period_embedding" over the
                waveform 1 .. N periods of the key back, "period_taps") through a 1x1 convolution;
                the pitch track is given per sample already (the data's), so no upsampling (the
                paper's transposed convolution) is needed;
            "_gated": the product above (GatedUnit);
        "_skip": 1x1 to skip_channels; "_res": 1x1 to residual_channels, "_add": x + res (the last
        layer has no residual branch: nothing reads it);
    "skip_sum" -> "skip_relu" -> "head_conv" (1x1, skip_channels) -> "head_relu" -> "logits" (1x1, 256)
    -> "predictions" (softmax over the last axis, float32).

Receptive field: the causal convolution's `kernel_size` samples plus (kernel_size - 1) * d for
every dilated layer. The defaults (10 dilations 1..512, 2 stacks, width 2) see 2 + 2 * 1,023 =
2,048 samples, 128 ms at 16 kHz, with 32 residual / 32 dilation / 64 skip channels: small enough to
train on a CPU (the paper used 30 layers of 1..512 and wider channels; NSynth's baseline 30 layers
of 256/512). `receptive_field(model)` reads it off the built layers; `kerascnn summary --model
wavenet` prints it.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import keras
from keras import ops

from kerascnn.errors import ModelError
from kerascnn.models.registry import register_model

QUANTIZATION = 256  # 8-bit mu-law classes (kerascnn.data.audio.CLASSES)
PITCH_CLASSES = 128  # MIDI keys 0..127, 0 standing for "no key held"


@keras.saving.register_keras_serializable(package="kerascnn")
class GatedUnit(keras.layers.Layer):
    """WaveNet's gated activation tanh(filter) * sigmoid(gate), each with its conditioning terms.

    Inputs: [filter, gate, filter_term_1, gate_term_1, ...]: filter and gate (B, T, C); each term
    either per sample (B, T, C), added as it is, or per clip (B, C), added at every time step.
    """

    def call(self, inputs):
        filt, gate, *terms = inputs
        for i, term in enumerate(terms):
            term = term if len(term.shape) == 3 else ops.expand_dims(term, 1)
            if i % 2 == 0:
                filt = filt + term
            else:
                gate = gate + term
        return ops.tanh(filt) * ops.sigmoid(gate)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package="kerascnn")
class PitchFeatures(keras.layers.Layer):
    """A per-sample track of MIDI keys (B, T) (0: no key) -> (B, T, 2 + 2 * harmonics) features that
    mean the same for every key, so a model conditioned on them plays keys it never heard:

        on            1 where a key is held
        octaves       (key - 69) / 12, the log-frequency from A4 (0 where none)
        sin, cos      of 2 pi h phi_t for h = 1 .. harmonics, phi_t = sum over tau <= t of f(key_tau) / rate
                      (cycles of the key's frequency f = 440 * 2^((key - 69) / 12) since the track's
                      start): a carrier at the pitch, continuous across key changes (0 where none)

    An embedding of the 128 keys (`pitch_conditioning="embedding"`) learns a row per key: rows of
    keys left out of training stay random. The phase starts at the track's start, so it is
    relative: training crops start anywhere in a note, and the model learns the carrier's period,
    not an absolute phase. Computed in float32 whatever the policy (bfloat16 would lose the phase),
    the running sum in blocks (`_cycles`), within ~1e-3 cycles of float64 over 16,000 samples.
    """

    def __init__(self, sample_rate: int = 16000, harmonics: int = 2, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.harmonics = int(harmonics)

    def call(self, keys):
        keys = ops.cast(keys, "float32")
        on = ops.cast(keys > 0, "float32")
        octaves = (keys - 69.0) / 12.0
        cycles = _cycles(on * 440.0 * ops.power(2.0, octaves) / float(self.sample_rate))
        parts = [on, on * octaves]
        for h in range(1, self.harmonics + 1):
            angle = 2.0 * math.pi * h * cycles
            parts += [on * ops.sin(angle), on * ops.cos(angle)]
        return ops.stack(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape), 2 + 2 * self.harmonics)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "harmonics": self.harmonics}


PHASE_BLOCK = 128  # samples summed at a time by _cycles


def _cycles(step):
    """The running sum of `step` (B, T) cycles per sample, wrapped to [0, 1). One float32 cumsum
    over T samples drifts (0.15 cycles after 16,000 samples at C6: each addition rounds at the sum's
    size); summing within blocks of PHASE_BLOCK, then the blocks' wrapped totals, keeps every partial
    sum small."""
    rows, length = ops.shape(step)[0], ops.shape(step)[1]
    pad = (-length) % PHASE_BLOCK
    blocks = ops.reshape(ops.pad(step, [[0, 0], [0, pad]]), (-1, PHASE_BLOCK))
    inner = ops.cumsum(blocks, axis=-1)
    totals = ops.reshape(inner[:, -1], (rows, -1))
    totals = totals - ops.floor(totals)
    offsets = ops.cumsum(totals, axis=-1) - totals  # each block's start, exclusive
    offsets = ops.reshape(offsets - ops.floor(offsets), (-1, 1))
    cycles = ops.reshape(inner + offsets, (rows, -1))[:, :length]
    return cycles - ops.floor(cycles)


def pitch_features(keys, sample_rate: int = 16000, harmonics: int = 2):
    """PitchFeatures in float64 numpy, for generation (kerascnn.synthesis.wavenet_generate): (B, T) -> (B, T, F)."""
    import numpy as np

    keys = np.asarray(keys, np.float64)
    on = (keys > 0).astype(np.float64)
    octaves = (keys - 69.0) / 12.0
    cycles = np.cumsum(on * 440.0 * 2.0 ** octaves / float(sample_rate), axis=-1)
    cycles = cycles - np.floor(cycles)
    parts = [on, on * octaves]
    for h in range(1, harmonics + 1):
        parts += [on * np.sin(2 * np.pi * h * cycles), on * np.cos(2 * np.pi * h * cycles)]
    return np.stack(parts, axis=-1)


def _period(keys, sample_rate):
    """Samples in one period of each MIDI key (any float array; keys <= 0 give the lowest key's)."""
    return sample_rate / (440.0 * 2.0 ** ((keys - 69.0) / 12.0))


@keras.saving.register_keras_serializable(package="kerascnn")
class PeriodTaps(keras.layers.Layer):
    """The waveform one, two, .. `taps` periods of the held key back: [audio (B, T) mu-law classes,
    keys (B, T)] -> (B, T, taps) companded values in [-1, 1]; position t (which predicts sample t + 1)
    gets x(t + 1 - j P_t), P_t = sample_rate / f(key_t) samples, read between samples by linear
    interpolation of the amplitudes, then companded (mu-law) again. 0 where no key is held or the tap
    falls before the clip's start.

    Why: a note repeats itself every period, so these inputs nearly hold the next sample (on rendered
    notes the sample one period back, scaled, leaves about 1% of the variance, the previous sample 6-11%:
    bench/wavenet.py periodicity);
    a WaveNet that leans on them stays periodic at exactly the key's frequency when it runs free, where
    one left to find the period in its fixed dilations drifts into noise. This is the quasi-periodic
    idea of Wu et al. 2019 (QPNet: dilations that follow the pitch), reduced to a few taps, read at the
    fractional period so the pitch is exact (an integer period is up to 57 cents off at C6, 16 kHz).
    Causal: the tap is at most t (a period of at least one sample; shorter ones read sample t).
    `period_taps_np` is the same in float64 numpy (kerascnn.models.mulaw's formulas), for generation."""

    def __init__(self, sample_rate: int = 16000, taps: int = 2, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.taps = int(taps)

    def call(self, inputs):
        audio, keys = inputs
        mu = float(QUANTIZATION - 1)
        level = 2.0 * ops.cast(audio, "float32") / mu - 1.0
        values = ops.sign(level) * (ops.exp(ops.abs(level) * math.log1p(mu)) - 1.0) / mu
        keys = ops.cast(keys, "float32")
        on = ops.cast(keys > 0, "float32")
        period = _period(keys, float(self.sample_rate))
        length = ops.shape(audio)[1]
        t = ops.expand_dims(ops.arange(length, dtype="int32"), 0)

        def read(index):  # values at `index`, 0 before the clip's start
            inside = ops.cast(index >= 0, "float32")
            return ops.take_along_axis(values, ops.maximum(index, 0), axis=1) * inside

        parts = []
        for j in range(1, self.taps + 1):
            back = ops.maximum(j * period - 1.0, 0.0)  # the tap sits `back` samples before t
            whole = ops.ceil(back)
            later = whole - back  # the weight of the later of the two samples around the tap
            lo = t - ops.cast(whole, "int32")
            hi = ops.minimum(lo + 1, t)
            x = (1.0 - later) * read(lo) + later * read(hi)
            parts.append(on * ops.sign(x) * ops.log1p(mu * ops.abs(x)) / math.log1p(mu))
        return ops.stack(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape[0]), self.taps)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "taps": self.taps}


def period_taps_np(audio, keys, positions, sample_rate: int = 16000, taps: int = 2):
    """PeriodTaps in float64 numpy at some positions: `audio` (B, N) classes (the history, N > every
    position), `keys` (B, M) the key at each of the M `positions` -> (B, M, taps)."""
    import numpy as np

    from kerascnn.models import mulaw

    audio = np.asarray(audio)
    keys = np.asarray(keys, np.float64)
    on = (keys > 0).astype(np.float64)
    period = _period(keys, float(sample_rate))
    t = np.asarray(positions, np.int64)[None, :]
    rows = np.arange(len(audio))[:, None]
    parts = []
    for j in range(1, taps + 1):
        back = np.maximum(j * period - 1.0, 0.0)
        whole = np.ceil(back)
        later = whole - back
        lo = t - whole.astype(np.int64)
        hi = np.minimum(lo + 1, t)
        # Only the samples read are decoded: generation calls this every step.
        x = (1.0 - later) * mulaw.expand(mulaw.level(audio[rows, np.maximum(lo, 0)])) * (lo >= 0) + \
            later * mulaw.expand(mulaw.level(audio[rows, np.maximum(hi, 0)])) * (hi >= 0)
        parts.append(on * mulaw.compand(x))
    return np.stack(parts, axis=-1)


def dilations(layers_per_stack: int, stacks: int) -> List[int]:
    """1, 2, 4, .. 2^(layers_per_stack - 1), repeated `stacks` times."""
    return [2 ** i for i in range(layers_per_stack)] * stacks


def layer_prefix(stack: int, dilation: int) -> str:
    return f"stack{stack}_d{dilation}"


def _inputs(num_instruments: int, pitch_classes: int, length: Optional[int]) -> Dict[str, keras.KerasTensor]:
    inputs = {"audio": keras.Input((length,), dtype="int32", name="audio")}
    if num_instruments:
        inputs["instrument"] = keras.Input((), dtype="int32", name="instrument")
    if pitch_classes:
        inputs["pitch"] = keras.Input((length,), dtype="int32", name="pitch")
    return inputs


PITCH_CONDITIONINGS = ("features", "embedding")


def _pitch_vectors(keys, pitch_classes: int, dim: int, how: str, sample_rate: int, harmonics: int, name: str):
    """The per-sample pitch vectors y ("pitch_embedding"), or None without a pitch input."""
    if not pitch_classes:
        return None
    if how not in PITCH_CONDITIONINGS:
        raise ModelError(f"{name}: pitch_conditioning must be one of {', '.join(PITCH_CONDITIONINGS)}. Received: {how!r}")
    if how == "embedding":
        return keras.layers.Embedding(pitch_classes, dim, name="pitch_embedding")(keys)
    features = PitchFeatures(sample_rate=sample_rate, harmonics=harmonics, name="pitch_features")(keys)
    return keras.layers.Dense(dim, name="pitch_embedding")(features)


def _residual_layer(x, prefix: str, kernel_size: int, dilation: int, channels: Dict[str, int], last: bool,
                    instrument=None, pitch=None):
    """One gated, conditioned, dilated layer: (the next layer's input or None, its skip output)."""
    conv = keras.layers.Conv1D
    filt = conv(channels["dilation"], kernel_size, dilation_rate=dilation, padding="causal", name=f"{prefix}_filter")(x)
    gate = conv(channels["dilation"], kernel_size, dilation_rate=dilation, padding="causal", name=f"{prefix}_gate")(x)
    terms = []
    for part in ("filter", "gate"):
        if instrument is not None:
            terms.append(keras.layers.Dense(channels["dilation"], use_bias=False,
                                            name=f"{prefix}_{part}_global")(instrument))
        if pitch is not None:
            terms.append(conv(channels["dilation"], 1, use_bias=False, name=f"{prefix}_{part}_local")(pitch))
    # GatedUnit takes the terms as (filter's, gate's) pairs of the same kind.
    half = len(terms) // 2
    pairs = [t for f, g in zip(terms[:half], terms[half:]) for t in (f, g)]
    z = GatedUnit(name=f"{prefix}_gated")([filt, gate, *pairs])
    skip = conv(channels["skip"], 1, name=f"{prefix}_skip")(z)
    if last:
        return None, skip
    res = conv(channels["residual"], 1, name=f"{prefix}_res")(z)
    return keras.layers.Add(name=f"{prefix}_add")([x, res]), skip


@register_model(default_input=(), min_input=(32,), paper="van den Oord et al. 2016", family="wavenet", inputs="audio")
def wavenet(input_shape=None, num_classes=QUANTIZATION, include_top=True, weights=None, pooling=None,
            classifier_activation="softmax", name="wavenet", num_instruments=0, pitch_classes=0,
            layers_per_stack=10, stacks=2, kernel_size=2, residual_channels=32, dilation_channels=32,
            skip_channels=64, embedding_dim=16, pitch_conditioning="features", sample_rate=16000, harmonics=2,
            period_taps=None):
    """WaveNet over 8-bit mu-law audio (van den Oord et al. 2016), with NSynth-style conditioning
    (Engel et al. 2017) on an instrument and a per-sample pitch track.

    Args:
        input_shape: None or () (any length); (T,) fixes the clip length T (for summaries).
        num_classes: ignored: the output is always the 256 mu-law classes of the next sample (the
            harness passes the data's class count, here the number of instruments).
        include_top: False ends at "skip_relu", the summed skip connections (B, T, skip_channels).
        pooling: must be None (the output is one vector per sample).
        num_instruments: global conditioning on an "instrument" input of that many classes through a
            learned embedding (`embedding_dim`); 0: none.
        pitch_classes: local conditioning on a per-sample "pitch" input (MIDI keys, 128); 0: none.
        pitch_conditioning: "features" (default): the keys' PitchFeatures (on, octaves from A4, a
            carrier at the pitch: `harmonics` sin/cos pairs at `sample_rate`) through a Dense layer
            to `embedding_dim`, the same function for every key, so keys never trained on play at
            their pitch; "embedding": a learned row per key (NSynth's one-hot pitch), which cannot.
        period_taps: with a pitch track, that many PeriodTaps (the waveform 1 .. N periods of the held
            key back, "period_taps", through "period_embedding") added to the pitch vectors y, so every
            gate sees where the note was one period ago (QPNet's idea; see PeriodTaps); 0: none;
            None (default): 2 with a pitch track, else 0. Without them a WaveNet trained 50 epochs on
            a CPU put 9.5% of its generated notes on pitch; with them, 20 epochs put 98% there and
            the shipped 50 epochs 94% (bench/RESULTS.md).
        layers_per_stack, stacks: dilations 1 .. 2^(layers_per_stack - 1), `stacks` times.
        kernel_size: the width of the causal and dilated convolutions (the paper's 2).
        residual_channels, dilation_channels, skip_channels: channels of the residual stream, of the
            gated units and of the skip connections and head.
    """
    if pooling is not None:
        raise ModelError(f"{name}: gives one prediction per sample; pooling must be None. Received: pooling={pooling!r}")
    length = None
    if input_shape is not None and tuple(input_shape) != ():
        shape = tuple(input_shape)
        if len(shape) != 1 or (shape[0] is not None and int(shape[0]) < 1):
            raise ModelError(f"{name}: takes a clip of samples, input_shape (T,) or (). Received: input_shape={shape}")
        length = None if shape[0] is None else int(shape[0])
    if layers_per_stack < 1 or stacks < 1 or kernel_size < 2:
        raise ModelError(f"{name}: needs layers_per_stack >= 1, stacks >= 1 and kernel_size >= 2. Received: "
                         f"{layers_per_stack}, {stacks}, {kernel_size}")
    inputs = _inputs(int(num_instruments), int(pitch_classes), length)
    channels = {"residual": residual_channels, "dilation": dilation_channels, "skip": skip_channels}
    x = keras.layers.Embedding(QUANTIZATION, residual_channels, name="input_embedding")(inputs["audio"])
    x = keras.layers.Conv1D(residual_channels, kernel_size, padding="causal", name="causal_conv")(x)
    instrument = (keras.layers.Embedding(int(num_instruments), embedding_dim, name="instrument_embedding")(
        inputs["instrument"]) if num_instruments else None)
    pitch = _pitch_vectors(inputs.get("pitch"), int(pitch_classes), embedding_dim, pitch_conditioning, sample_rate,
                           harmonics, name)
    if period_taps is None:
        period_taps = 2 if pitch_classes else 0
    if period_taps:
        if not pitch_classes:
            raise ModelError(f"{name}: period_taps reads the waveform one period of the held key back; it needs "
                             f"a pitch track (pitch_classes > 0). Received: period_taps={period_taps}")
        taps = PeriodTaps(sample_rate=sample_rate, taps=int(period_taps), name="period_taps")(
            [inputs["audio"], inputs["pitch"]])
        taps = keras.layers.Dense(embedding_dim, use_bias=False, name="period_embedding")(taps)
        pitch = keras.layers.Add(name="pitch_vectors")([pitch, taps])
    rates = dilations(layers_per_stack, stacks)
    skips = []
    for i, d in enumerate(rates):
        x, skip = _residual_layer(x, layer_prefix(i // layers_per_stack, d), kernel_size, d, channels,
                                  last=i == len(rates) - 1, instrument=instrument, pitch=pitch)
        skips.append(skip)
    out = keras.layers.Add(name="skip_sum")(skips) if len(skips) > 1 else skips[0]
    out = keras.layers.ReLU(name="skip_relu")(out)
    if include_top:
        out = keras.layers.Conv1D(skip_channels, 1, name="head_conv")(out)
        out = keras.layers.ReLU(name="head_relu")(out)
        out = keras.layers.Conv1D(QUANTIZATION, 1, name="logits")(out)
        out = keras.layers.Activation(classifier_activation or "linear", dtype="float32", name="predictions")(out)
    model = keras.Model(inputs, out, name=name)
    if weights is not None:
        from kerascnn.models.common import load_weights

        load_weights(model, weights, name)
    return model


def receptive_field(model: keras.Model) -> int:
    """Samples one output sees, from the model's layers: the causal convolution and every dilated
    layer's "_filter" (its "_gate" sees the same samples) of width k and dilation d add (k - 1) * d
    to the single sample the embedding sees."""
    size = 1
    for layer in model.layers:
        if layer.name == "causal_conv" or layer.name.endswith("_filter"):
            size += (layer.kernel_size[0] - 1) * layer.dilation_rate[0]
    return size


def residual_prefixes(model: keras.Model) -> List[str]:
    """The "stack{s}_d{d}" prefixes of the model's gated layers, in order."""
    return [layer.name[: -len("_gated")] for layer in model.layers if layer.name.endswith("_gated")]


__all__ = ["GatedUnit", "PITCH_CLASSES", "PITCH_CONDITIONINGS", "PeriodTaps", "PitchFeatures", "period_taps_np",
           "pitch_features", "QUANTIZATION", "dilations", "layer_prefix", "receptive_field",
           "residual_prefixes", "wavenet"]
