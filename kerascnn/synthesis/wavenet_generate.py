"""Sampling audio from a WaveNet (kerascnn.models.wavenet), one sample at a time.

Fast generation (Paine et al. 2016, "Fast Wavenet Generation Algorithm"): every dilated layer keeps
a queue of its own past inputs, so drawing a sample costs one step per layer (a product with each
layer's taps at t, t - d, .., t - (k-1) d) instead of recomputing the whole receptive field. The
plain algorithm (`fast=False`, for checks and benchmarks) runs the whole network over the last
receptive field of samples for every sample it draws, as a naive implementation would.

Both run the trained weights in float64 numpy (read from the Keras model by layer name: `Net`), with
the same arithmetic per position, so for the same seed and temperature they draw the same samples;
`Net.logits` runs a whole clip and matches the Keras model (a test checks both). Rows of a batch are
independent notes (other pitches, instruments), generated together: each step's products are
(B, C) x (C, C') matrices instead of B vector products.

    net = Net.from_model(model)
    classes = generate(net, 16000, instrument=[0, 1], pitch=np.full((2, 16000), 60), seed=1)

Sampling: softmax(logits / temperature), one uniform draw per note and sample from
numpy.random.default_rng(seed) (inverse CDF); temperature 0 takes the most likely class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from kerascnn.errors import UserError
from kerascnn.runtime.progress import Progress

SILENCE = 128  # mu-law class of 0.0: the sample before the first one


@dataclass
class Layer:
    """One gated layer's weights, taps stacked: x_taps (B, k*R) @ w (k*R, 2D) gives filter | gate."""

    prefix: str
    dilation: int
    kernel_size: int
    w: np.ndarray  # (k * R, 2 * D): filter and gate, oldest tap first
    b: np.ndarray  # (2 * D,)
    cond_global: Optional[np.ndarray]  # (E_i, 2 * D): V_f | V_g, or None
    cond_local: Optional[np.ndarray]  # (E_p, 2 * D): U_f | U_g, applied to the pitch vectors y, or None
    w_out: np.ndarray  # (D, S [+ R]): skip | residual (the last layer: skip only)
    b_out: np.ndarray

    @property
    def span(self) -> int:
        return (self.kernel_size - 1) * self.dilation


@dataclass
class Net:
    """A WaveNet's weights in float64, as the fast and plain algorithms use them."""

    embedding: np.ndarray  # (256, R)
    causal_w: np.ndarray  # (k * R, R)
    causal_b: np.ndarray
    causal_k: int
    layers: List[Layer]
    skip_channels: int
    head_w: np.ndarray
    head_b: np.ndarray
    logits_w: np.ndarray
    logits_b: np.ndarray
    instrument_embedding: Optional[np.ndarray]  # (K, E_i) or None: no global conditioning
    pitch_table: Optional[np.ndarray] = None  # (128, E_p): pitch_conditioning="embedding"
    pitch_dense: Optional[Tuple[np.ndarray, np.ndarray]] = None  # (F, E_p), (E_p,): "features"
    pitch_feature_args: Optional[dict] = None  # PitchFeatures' sample_rate and harmonics
    period_dense: Optional[np.ndarray] = None  # (taps, E_p): PeriodTaps' "period_embedding", or None
    period_args: Optional[dict] = None  # PeriodTaps' sample_rate and taps

    @property
    def pitched(self) -> bool:
        return self.pitch_table is not None or self.pitch_dense is not None

    @property
    def pitch_classes(self) -> int:
        return 0 if not self.pitched else (len(self.pitch_table) if self.pitch_table is not None else 128)

    def pitch_vectors(self, keys: np.ndarray) -> np.ndarray:
        """(B, T) keys -> the (B, T, E_p) vectors y the gates add U y of (the model's "pitch_embedding"),
        features computed from the track's start as the model computes them from a clip's."""
        from kerascnn.models.wavenet import pitch_features

        keys = np.asarray(keys)
        if self.pitch_table is not None:
            return self.pitch_table[keys]
        return pitch_features(keys, **self.pitch_feature_args) @ self.pitch_dense[0] + self.pitch_dense[1]

    def period_terms(self, audio: np.ndarray, keys: np.ndarray, positions: np.ndarray):
        """What PeriodTaps add to the pitch vectors at `positions` (B, M, E_p), read from the
        history `audio` (B, N) with `keys` (B, M) held there; 0 for a model without them."""
        if self.period_dense is None:
            return 0.0
        from kerascnn.models.wavenet import period_taps_np

        return period_taps_np(audio, keys, positions, **self.period_args) @ self.period_dense

    @property
    def receptive_field(self) -> int:
        return 1 + (self.causal_k - 1) + sum(layer.span for layer in self.layers)

    @classmethod
    def from_model(cls, model) -> "Net":
        """Read the weights of a kerascnn wavenet (built or loaded) by its layer names."""
        names = {layer.name for layer in model.layers}
        missing = {"input_embedding", "causal_conv", "logits"} - names
        if missing:
            raise UserError(f"{model.name} is not a kerascnn wavenet (no layer {', '.join(sorted(missing))}).")

        def w(name, i=0):
            return np.asarray(model.get_layer(name).weights[i], np.float64)

        prefixes = [n[: -len("_gated")] for n in (layer.name for layer in model.layers) if n.endswith("_gated")]
        pitch = {}
        if "pitch_features" in names:
            config = model.get_layer("pitch_features").get_config()
            pitch = {"pitch_dense": (w("pitch_embedding"), w("pitch_embedding", 1)),
                     "pitch_feature_args": {"sample_rate": config["sample_rate"], "harmonics": config["harmonics"]}}
        elif "pitch_embedding" in names:
            pitch = {"pitch_table": w("pitch_embedding")}
        if "period_taps" in names:
            config = model.get_layer("period_taps").get_config()
            pitch.update(period_dense=w("period_embedding"),
                         period_args={"sample_rate": config["sample_rate"], "taps": config["taps"]})
        layers = [_layer(model, p, names, w) for p in prefixes]
        causal = model.get_layer("causal_conv")
        return cls(embedding=w("input_embedding"), causal_w=_stack_taps(w("causal_conv")), causal_b=w("causal_conv", 1),
                   causal_k=int(causal.kernel_size[0]), layers=layers,
                   skip_channels=int(model.get_layer(f"{prefixes[-1]}_skip").filters),
                   head_w=w("head_conv")[0], head_b=w("head_conv", 1), logits_w=w("logits")[0],
                   logits_b=w("logits", 1),
                   instrument_embedding=w("instrument_embedding") if "instrument_embedding" in names else None,
                   **pitch)

    # -- the network over a whole clip (the plain algorithm and the check against Keras) --------

    def logits(self, audio: np.ndarray, instrument: Optional[np.ndarray] = None,
               pitch: Optional[np.ndarray] = None, local: Optional[np.ndarray] = None) -> np.ndarray:
        """(B, T, 256) logits of clips `audio` (B, T) of classes; `instrument`: (B, E_i) embedding
        vectors (see `instrument_vectors`); `pitch`: (B, T) keys, or `local`: their pitch vectors
        with the period terms (of a longer track and history, sliced: the plain algorithm's windows)."""
        if local is None and pitch is not None:
            audio = np.asarray(audio)
            local = self.pitch_vectors(pitch) + self.period_terms(audio, pitch, np.arange(audio.shape[1]))
        x = _causal(self.embedding[np.asarray(audio)], self.causal_w, self.causal_b, self.causal_k, 1)
        skips = 0.0
        for layer in self.layers:
            fg = _causal(x, layer.w, layer.b, layer.kernel_size, layer.dilation)
            fg = fg + _conditioning(layer, instrument, local)
            out = _gated(fg) @ layer.w_out + layer.b_out
            skips = skips + out[..., : self.skip_channels]
            if out.shape[-1] > self.skip_channels:
                x = x + out[..., self.skip_channels:]
        return self.head(skips)

    def head(self, skips: np.ndarray) -> np.ndarray:
        h = np.maximum(np.maximum(skips, 0.0) @ self.head_w + self.head_b, 0.0)
        return h @ self.logits_w + self.logits_b


def _layer(model, prefix: str, names, w) -> Layer:
    conv = model.get_layer(f"{prefix}_filter")
    cond_global = (np.concatenate([w(f"{prefix}_filter_global"), w(f"{prefix}_gate_global")], axis=1)
                   if f"{prefix}_filter_global" in names else None)
    cond_local = (np.concatenate([w(f"{prefix}_filter_local")[0], w(f"{prefix}_gate_local")[0]], axis=1)
                  if f"{prefix}_filter_local" in names else None)
    outs = [f"{prefix}_skip"] + ([f"{prefix}_res"] if f"{prefix}_res" in names else [])
    return Layer(prefix=prefix, dilation=int(conv.dilation_rate[0]), kernel_size=int(conv.kernel_size[0]),
                 w=np.concatenate([_stack_taps(w(f"{prefix}_filter")), _stack_taps(w(f"{prefix}_gate"))], axis=1),
                 b=np.concatenate([w(f"{prefix}_filter", 1), w(f"{prefix}_gate", 1)]),
                 cond_global=cond_global, cond_local=cond_local,
                 w_out=np.concatenate([w(n)[0] for n in outs], axis=1), b_out=np.concatenate([w(n, 1) for n in outs]))


def _stack_taps(kernel: np.ndarray) -> np.ndarray:
    """A Conv1D kernel (k, C_in, C_out) as one (k * C_in, C_out) matrix, oldest tap first."""
    return kernel.reshape(-1, kernel.shape[-1])


def _causal(x: np.ndarray, w: np.ndarray, b: np.ndarray, k: int, d: int) -> np.ndarray:
    """A causal dilated convolution of (B, T, C) with zeros before the start, as Keras pads it."""
    span = (k - 1) * d
    padded = np.pad(x, ((0, 0), (span, 0), (0, 0)))
    taps = np.concatenate([padded[:, j * d: j * d + x.shape[1]] for j in range(k)], axis=-1)
    return taps @ w + b


def _conditioning(layer: Layer, instrument, local):
    term = 0.0
    if layer.cond_global is not None:
        term = term + (instrument @ layer.cond_global)[:, None, :]
    if layer.cond_local is not None:
        term = term + local @ layer.cond_local
    return term


def _gated(fg: np.ndarray) -> np.ndarray:
    half = fg.shape[-1] // 2
    return np.tanh(fg[..., :half]) * (1.0 / (1.0 + np.exp(-fg[..., half:])))


# ---- conditioning inputs ---------------------------------------------------------------------------

def instrument_vectors(net: Net, instrument: Union[None, Sequence, np.ndarray], batch: int) -> Optional[np.ndarray]:
    """(B, E_i) embedding rows: from indices (B,), or vectors (B, E_i) as given (a mix of instruments'
    rows, NSynth's morph); None for a model without global conditioning."""
    if net.instrument_embedding is None:
        if instrument is not None:
            raise UserError("This WaveNet was trained without instruments (no global conditioning); drop --instrument.")
        return None
    if instrument is None:
        raise UserError(f"This WaveNet plays {len(net.instrument_embedding)} instruments; choose one with --instrument.")
    values = np.asarray(instrument)
    if values.ndim == 2:
        return np.broadcast_to(values.astype(np.float64), (batch, values.shape[1])).copy()
    index = np.broadcast_to(values.astype(np.int64), (batch,))
    if index.min() < 0 or index.max() >= len(net.instrument_embedding):
        raise UserError(f"instrument index {int(index.max())} is out of range: the model has "
                        f"{len(net.instrument_embedding)} instruments.")
    return net.instrument_embedding[index]


def mix_instruments(net: Net, weights: dict) -> np.ndarray:
    """The embedding of a mix {instrument index: weight}: sum w_i e_i / sum w_i (NSynth's interpolation)."""
    if net.instrument_embedding is None:
        raise UserError("This WaveNet was trained without instruments; there is nothing to interpolate.")
    total = float(sum(weights.values()))
    if total <= 0:
        raise UserError(f"instrument weights must add up to more than 0. Received: {weights}")
    return sum(float(v) * net.instrument_embedding[int(i)] for i, v in weights.items()) / total


# ---- sampling --------------------------------------------------------------------------------------

def draw(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """One class per row of (B, 256) logits: softmax(logits / temperature) by inverse CDF, one
    uniform per row (drawn even at temperature 0, the argmax, so every setting keeps the stream)."""
    u = rng.random(len(logits))
    if temperature <= 0:
        return np.argmax(logits, axis=-1)
    z = logits / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p, axis=-1)
    return np.minimum((cdf < u[:, None] * cdf[:, -1:]).sum(axis=-1), logits.shape[-1] - 1)


class _Queues:
    """Fast generation's state: each layer's last `span` + 1 inputs in a ring (zeros before the start)."""

    def __init__(self, net: Net, batch: int):
        self.net = net
        self.t = 0
        width = net.embedding.shape[1]
        self.causal = np.zeros((net.causal_k, batch, width))
        self.rings = [np.zeros((layer.span + 1, batch, width)) for layer in net.layers]

    def step(self, classes: np.ndarray, global_terms, local_t) -> np.ndarray:
        """Feed one sample per row; the (B, 256) logits of the next."""
        net, t = self.net, self.t
        x = self._push(self.causal, net.embedding[classes], 1, net.causal_k) @ net.causal_w + net.causal_b
        skips = 0.0
        for i, layer in enumerate(net.layers):
            fg = self._push(self.rings[i], x, layer.dilation, layer.kernel_size) @ layer.w + layer.b
            if global_terms is not None:
                fg = fg + global_terms[i]
            if layer.cond_local is not None:
                fg = fg + local_t @ layer.cond_local
            out = _gated(fg) @ layer.w_out + layer.b_out
            skips = skips + out[:, : net.skip_channels]
            if out.shape[-1] > net.skip_channels:
                x = x + out[:, net.skip_channels:]
        self.t = t + 1
        return net.head(skips)

    def _push(self, ring: np.ndarray, x: np.ndarray, d: int, k: int) -> np.ndarray:
        """Store x at time t; the taps x[t - (k-1) d], .., x[t] side by side (B, k * C)."""
        size = len(ring)
        ring[self.t % size] = x
        return np.concatenate([ring[(self.t - (k - 1 - j) * d) % size] for j in range(k)], axis=-1)


def generate(net: Net, length: int, *, batch: Optional[int] = None, instrument=None,
             pitch: Optional[np.ndarray] = None, prime: Optional[np.ndarray] = None, temperature: float = 1.0,
             seed: int = 0, fast: bool = True, progress: bool = True) -> np.ndarray:
    """`length` new samples per note: (B, length) mu-law classes.

    Args:
        net: Net.from_model(model).
        batch: the number of notes B (default: from `pitch`, `prime` or `instrument`, else 1).
        instrument: (B,) indices or (B, E_i) embedding vectors (see `mix_instruments`); required
            exactly when the model has global conditioning.
        pitch: (B, length) the key held at each new sample; required when the model is pitched
            (during a prime the key is 0).
        prime: (B, P) classes the notes start from (`continue`); default one silent sample.
        temperature: of the softmax; 0 takes the most likely class.
        seed: numpy's generator seed for the draws.
        fast: the queued algorithm; False recomputes the receptive field for every sample.
        progress: a progress line (samples per second, time left) on stderr.
    """
    batch = _batch_size(batch, instrument, pitch, prime)
    h = instrument_vectors(net, instrument, batch)
    start = np.full((batch, 1), SILENCE, np.int64) if prime is None else np.asarray(prime, np.int64)
    if start.shape[0] != batch or start.shape[1] < 1:
        raise UserError(f"--prime must give at least one sample per note. Received: shape {start.shape}")
    track = _pitch_track(net, pitch, batch, length, start.shape[1] - 1)
    # Every step's pitch vectors at once, from the track's start, as the model computes a clip's (the
    # plain algorithm's windows slice them, so both see the same carrier phase).
    local = None if track is None else net.pitch_vectors(track)
    rng = np.random.default_rng(seed)
    audio = np.concatenate([start, np.zeros((batch, length), np.int64)], axis=1)
    feed = start.shape[1] - 1  # samples of the prime predicted by teacher forcing, not drawn
    steps = feed + length
    # Counted over every note of the batch: samples per second is what was generated, whatever the batch.
    with Progress(length * batch, f"wavenet {'fast' if fast else 'plain'} x{batch}", unit="sample",
                  disable=not progress) as bar:
        if fast:
            _run_fast(net, audio, track, local, h, steps, feed, temperature, rng, bar)
        else:
            _run_plain(net, audio, track, local, h, steps, feed, temperature, rng, bar)
    return audio[:, start.shape[1]:]


def _batch_size(batch, instrument, pitch, prime) -> int:
    if batch is not None:
        return int(batch)
    for given in (pitch, prime):
        if given is not None:
            return len(np.asarray(given))
    values = None if instrument is None else np.asarray(instrument)
    return len(values) if values is not None and values.ndim >= 1 else 1


def _pitch_track(net: Net, pitch, batch: int, length: int, primed: int) -> Optional[np.ndarray]:
    """(B, primed + length) keys for every step (0 during the prime), or None for an unpitched model."""
    if not net.pitched:
        if pitch is not None:
            raise UserError("This WaveNet was trained without pitch tracks; drop --pitch.")
        return None
    if pitch is None:
        raise UserError("This WaveNet plays pitches; give the key of every sample (--pitch).")
    track = np.broadcast_to(np.asarray(pitch, np.int64), (batch, length))
    if track.min() < 0 or track.max() >= net.pitch_classes:
        raise UserError(f"pitches must be MIDI keys 0-{net.pitch_classes - 1}. Received: "
                        f"{int(track.min())}-{int(track.max())}")
    return np.concatenate([np.zeros((batch, primed), np.int64), track], axis=1)


def _run_fast(net, audio, track, local, h, steps, feed, temperature, rng, bar) -> None:
    queues = _Queues(net, len(audio))
    terms = None if h is None else [h @ layer.cond_global for layer in net.layers]
    for t in range(steps):
        local_t = None if local is None else local[:, t]
        if net.period_dense is not None:  # the period taps read what was just drawn: added step by step
            local_t = local_t + net.period_terms(audio[:, : t + 1], track[:, t: t + 1], np.array([t]))[:, 0]
        logits = queues.step(audio[:, t], terms, local_t)
        if t >= feed:
            audio[:, t + 1] = draw(logits, temperature, rng)
            bar.update(len(audio))


def _run_plain(net, audio, track, local, h, steps, feed, temperature, rng, bar) -> None:
    field = net.receptive_field
    for t in range(feed, steps):
        lo = max(0, t + 1 - field)  # the last output sees exactly this window (its period taps, all history)
        window_local = None
        if local is not None:
            window_local = local[:, lo: t + 1] + net.period_terms(audio[:, : t + 1], track[:, lo: t + 1],
                                                                  np.arange(lo, t + 1))
        window = net.logits(audio[:, lo: t + 1], h, local=window_local)
        audio[:, t + 1] = draw(window[:, -1], temperature, rng)
        bar.update(len(audio))


__all__ = ["Layer", "Net", "SILENCE", "draw", "generate", "instrument_vectors", "mix_instruments"]
