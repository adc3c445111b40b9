"""Data: one `--data` spec to batched tf.data splits for training, and image files for prediction.

    from kerascnn.data import build_datasets
    bundle = build_datasets(DataConfig(spec="digits"), image_shape=(32, 32, 1), batch_size=128)
    model.fit(bundle.train, validation_data=bundle.val)

Specs: digits (embedded), mnist | fashion_mnist | cifar10 | cifar100 (keras.datasets, from the
Keras cache), tfds:NAME[:SPLIT] (a prepared TFDS directory), idx:DIR (MNIST-format IDX files) and
image folders. Images come as float32 [0, 255] at the model's input shape, labels one-hot.
"""
from kerascnn.data.build import DataBundle, build_datasets, load_images
from kerascnn.data.specs import SPECS, describe_spec

__all__ = ["DataBundle", "SPECS", "build_datasets", "describe_spec", "load_images"]
