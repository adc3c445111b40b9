"""A drop-in BatchNormalization that runs TensorFlow's fused kernel: the throughput benchmark's
`--fused-bn` experiment, and a proposal for `kerascnn.layers` (not used by the package yet).

Keras 3's BatchNormalization computes the batch moments and the normalisation as separate tensor
ops (mean, variance, subtract, scale ...: several passes over every activation, forward and
backward) and, under mixed_bfloat16, casts each activation to float32 for the moments. TensorFlow's
FusedBatchNormV3 (oneDNN on CPU, cuDNN on GPU) does it in one pass with float32 statistics on
bfloat16/float16 inputs. Measured on a 2-core AVX-512 CPU (bench/RESULTS.md): ResNet-20 training
+28% in float32 and +50% under mixed_bfloat16.

Same variables, names and config as keras.layers.BatchNormalization, so weights files load either
way. One documented difference: the moving variance is updated with the unbiased batch variance
(n / (n - 1), what the fused kernel returns and tf.keras 2 did), Keras 3 uses the biased one; with
n = batch x height x width >= 8192 here that is < 0.02%. Falls back to the Keras implementation for
anything but a 4-D channels-last input on the TensorFlow backend (and for synchronized BN).

    python bench/fused_bn.py      # self-check against keras.layers.BatchNormalization
"""
from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="kerascnn_bench")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    def _fusable(self, inputs) -> bool:
        return (keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
                and self.axis in (-1, 3) and not self.synchronized)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        mean = tf.cast(self.moving_mean, tf.float32)
        variance = tf.cast(self.moving_variance, tf.float32)
        if training and self.trainable:
            y, new_mean, new_variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=mean, variance=variance, epsilon=self.epsilon,
                is_training=True, exponential_avg_factor=1.0 - self.momentum)
            self.moving_mean.assign(tf.cast(new_mean, self.moving_mean.dtype))
            self.moving_variance.assign(tf.cast(new_variance, self.moving_variance.dtype))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=mean, variance=variance, epsilon=self.epsilon, is_training=False)
        return y


def _self_check() -> None:
    """Forward, gradients and moving statistics against Keras's own layer, float32 and bfloat16."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (16, 8, 8, 5)).astype("float32"))
    for policy, tol in (("float32", 1e-4), ("mixed_bfloat16", 3e-2)):
        keras.mixed_precision.set_global_policy(policy)
        ref, fused = keras.layers.BatchNormalization(momentum=0.9), FusedBatchNormalization(momentum=0.9)
        for layer in (ref, fused):
            layer.build(x.shape)
            layer.gamma.assign(rng.uniform(0.5, 1.5, 5).astype("float32"))
            layer.beta.assign(rng.normal(size=5).astype("float32"))
        fused.set_weights(ref.get_weights())
        outs, grads = [], []
        for layer in (ref, fused):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2 * tf.range(5, dtype=tf.float32))
            outs.append(tf.cast(y, tf.float32).numpy())
            grads.append([g.numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])])
        np.testing.assert_allclose(outs[0], outs[1], atol=tol, rtol=tol)
        for g_ref, g_fused in zip(*grads):
            np.testing.assert_allclose(g_ref, g_fused, atol=tol * 10, rtol=tol)
        n = x.shape[0] * x.shape[1] * x.shape[2]
        np.testing.assert_allclose(ref.moving_mean.numpy(), fused.moving_mean.numpy(), rtol=1e-5, atol=1e-5)
        # unbiased vs biased batch variance, nothing else
        expected = 0.9 * 1.0 + 0.1 * (ref.moving_variance.numpy() - 0.9) / 0.1 * n / (n - 1)
        np.testing.assert_allclose(fused.moving_variance.numpy(), expected, rtol=1e-4)
        fused.set_weights(ref.get_weights())  # same moving statistics: compare inference alone
        inference = [tf.cast(layer(x, training=False), tf.float32).numpy() for layer in (ref, fused)]
        np.testing.assert_allclose(inference[0], inference[1], atol=tol * 10, rtol=tol)
        print(f"{policy}: fused BatchNormalization matches keras.layers.BatchNormalization")
    keras.mixed_precision.set_global_policy("float32")


if __name__ == "__main__":
    _self_check()
