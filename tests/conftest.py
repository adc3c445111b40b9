"""Shared test set-up: quiet TensorFlow, CPU only, small deterministic seeds."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


_TESTS_SINCE_GC = [0]


@pytest.fixture(autouse=True)
def _clear_keras_session():
    """Each test starts with a fresh Keras graph state and float32 policy.

    `clear_session()`'s own garbage collection costs ~0.35 s a test (minutes over the suite), so it
    runs without it, and a full collection runs every 20 tests to keep the memory in check.
    """
    yield
    import gc

    import keras

    keras.mixed_precision.set_global_policy("float32")
    keras.backend.clear_session(free_memory=False)
    _TESTS_SINCE_GC[0] += 1
    if _TESTS_SINCE_GC[0] >= 20:
        _TESTS_SINCE_GC[0] = 0
        gc.collect()
