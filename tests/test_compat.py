"""kerascnn.runtime.compat: the Keras private internals the package relies on still exist and mean what the
accessors assume, and the work-arounds are still needed (each test says what its failure means)."""
import json
import os
import subprocess
import sys
import textwrap

import keras
import pytest

from kerascnn.runtime import compat


def test_keras_version_is_the_imported_one():
    assert compat.KERAS_VERSION[:2] == tuple(int(p) for p in keras.__version__.split(".")[:2])


def test_keras_history_names_the_producing_layer_call():
    """Fails when Keras moves `KerasTensor._keras_history` or `_inbound_nodes`: update compat."""
    inputs = keras.Input((4,), name="x")
    dense = keras.layers.Dense(4, name="shared")
    first = dense(inputs)
    second = dense(first)  # the same layer called twice: two nodes
    concat = keras.layers.Concatenate(name="join")([first, second])
    assert compat.keras_history(inputs).operation.name == "x"
    history = compat.keras_history(second)
    assert (history.operation, history.node_index, history.tensor_index) == (dense, 1, 0)
    node = compat.producer_node(concat)
    assert node.operation.name == "join" and list(node.input_tensors) == [first, second]
    assert list(compat.producer_node(second).input_tensors) == [first]


def test_keras_history_of_a_non_keras_tensor_says_what_to_update():
    with pytest.raises(TypeError, match="kerascnn.runtime.compat.keras_history"):
        compat.keras_history(object())


def test_sequential_graph_is_functional():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
    graph = compat.sequential_graph(model)
    assert isinstance(graph, keras.Model) and [layer.name for layer in graph.layers][-1] == "d"
    assert compat.producer_node(graph.outputs[0]).operation is model.get_layer("d")


_MULTIWORKER = textwrap.dedent("""
    import json, tensorflow as tf
    from kerascnn.runtime.compat import multiworker_fixes

    def scalar_axis0_ok(strategy):
        try:
            strategy.reduce("MEAN", strategy.run(lambda: tf.constant(1.0)), axis=0)
            return True
        except ValueError:
            return False

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # one local worker: no TF_CONFIG
    print(json.dumps([scalar_axis0_ok(strategy), scalar_axis0_ok(multiworker_fixes(strategy))]))
""")


@pytest.mark.slow
def test_multiworker_scalar_reduction_still_needs_the_fix():
    # A subprocess: a collective strategy fixes TensorFlow's devices for the rest of the process.
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    proc = subprocess.run([sys.executable, "-c", _MULTIWORKER], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    unpatched, patched = json.loads(proc.stdout.strip().splitlines()[-1])
    assert patched
    assert not unpatched, "Keras/TF reduce scalars over axis 0 now: drop the second multiworker fix"
