"""Batch normalisation's cost on this CPU, by channel count: TensorFlow's fused kernel (FusedBatchNormV3,
oneDNN) against Keras's own ops, and what kerascnn's FusedBatchNormalization does now.

    python bench/batchnorm.py                                  # mixed_bfloat16 and float32
    python bench/batchnorm.py --precisions mixed_bfloat16 --channels 16,24,32

For each precision and channel count: one training-mode forward + backward (gradients of the input,
gamma and beta) of a (batch, size, size, channels) activation, in a tf.function, the median of
--repeats after a warm-up, for (fused) the fused kernel (FusedBatchNormalization with its choice
forced on), (keras) keras.layers.BatchNormalization, and (ours) FusedBatchNormalization as it chooses
(`_fusable`: bfloat16 takes the fused kernel only at multiples of 16 channels, where oneDNN's blocked
kernel runs; elsewhere it drops to a slow path). The size shrinks as the channels grow (as in a CNN), so
the activations stay about the same size.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout, not installed


def _median_ms(fn, repeats: int) -> float:
    from bench.timing import call_times

    return 1e3 * sorted(call_times(fn, repeats))[repeats // 2]


def time_layer(layer, x, repeats: int) -> float:
    import tensorflow as tf

    layer.build(x.shape)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.cast(x, tf.float32))
        return tape.gradient(loss, [x, layer.gamma, layer.beta])

    return _median_ms(lambda: [g.numpy() for g in step()], repeats)


def run(args) -> list:
    import keras
    import tensorflow as tf

    from kerascnn.models.layers import FusedBatchNormalization

    class AlwaysFused(FusedBatchNormalization):
        def _fusable(self, inputs, mask) -> bool:
            return True

    rows = []
    for precision in args.precisions.split(","):
        keras.mixed_precision.set_global_policy(precision)
        for c in (int(c) for c in args.channels.split(",")):
            size = max(4, int(round((args.elements / (args.batch * c)) ** 0.5)))
            dtype = keras.mixed_precision.global_policy().compute_dtype
            x = tf.cast(tf.random.normal([args.batch, size, size, c]), dtype)
            ours = FusedBatchNormalization()
            row = {"precision": precision, "channels": c, "shape": [args.batch, size, size, c],
                   "fused_ms": time_layer(AlwaysFused(), x, args.repeats),
                   "keras_ms": time_layer(keras.layers.BatchNormalization(), x, args.repeats),
                   "ours_ms": time_layer(ours, x, args.repeats),
                   "ours_takes": "fused" if ours._fusable(x, None) else "keras"}
            rows.append(row)
            print(f"{precision:15s} {c:4d} ch {size:3d}x{size:<3d} fused {row['fused_ms']:7.1f} ms  keras "
                  f"{row['keras_ms']:7.1f} ms  ours {row['ours_ms']:7.1f} ms ({row['ours_takes']}; keras/fused "
                  f"{row['keras_ms'] / row['fused_ms']:.2f})", flush=True)
    keras.mixed_precision.set_global_policy("float32")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precisions", default="mixed_bfloat16,float32")
    p.add_argument("--channels", default="8,16,24,32,40,48,64,96,128,192,200,728")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--elements", type=int, default=64 * 32 * 32 * 24, help="activation size to aim at")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    rows = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
