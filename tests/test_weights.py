"""kerascnn.models.weights: the `weights=` values every command accepts, and the ImageNet file resolver.

The resolver's file names and URLs are checked against the ones keras.applications itself asks
`get_file` for (the reference), and the offline failure against a Keras that must never be asked.
Nothing here downloads: get_file is replaced and the network probe monkeypatched or pointed at
loopback sockets.
"""
import json
import socket
import subprocess
import sys
import time

import pytest

from kerascnn.models import weights as kw
from kerascnn.errors import ModelError, SettingError, UserError


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache: $KERAS_HOME/models."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras" / "models"


# ---------------------------------------------------------------------------------------------
# check_weights

@pytest.mark.parametrize("value", [None, "none", "None", "", " none "])
def test_no_weights_spellings_are_none(value):
    assert kw.check_weights("lenet5", value, pretrained=()) is None


def test_a_pretrained_name_the_model_lists_is_accepted():
    assert kw.check_weights("vgg16", "imagenet", pretrained=("imagenet",)) == "imagenet"
    assert kw.check_weights("vgg16", "ImageNet", pretrained=("imagenet",)) == "imagenet"


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5", ".keras"])
def test_an_existing_weights_file_is_accepted(tmp_path, suffix):
    path = tmp_path / f"w{suffix}"
    path.write_bytes(b"")
    assert kw.check_weights("lenet5", str(path), pretrained=()) == str(path)
    assert kw.check_weights("lenet5", path, pretrained=()) == str(path)  # a pathlib.Path too


def test_imagenet_for_a_model_without_pretrained_weights_is_a_setting_error():
    with pytest.raises(SettingError) as e:
        kw.check_weights("lenet5", "imagenet", pretrained=())
    assert e.value.param == "weights"
    # a library message names the library's values; the CLI adds the flag (tests/test_cli.py)
    assert "lenet5 has no pretrained weights" in str(e.value) and "a path to a .weights.h5" in str(e.value)
    assert "\n" not in str(e.value)


def test_the_registry_supplies_pretrained_names():
    assert kw.check_weights("resnet50", "imagenet") == "imagenet"
    with pytest.raises(SettingError, match="lenet5 has no pretrained weights"):
        kw.check_weights("lenet5", "imagenet")


@pytest.mark.parametrize("make, message", [
    (lambda d: str(d / "missing.weights.h5"), "no such weights file"),
    (lambda d: (d / "notes.txt").write_text("x") and str(d / "notes.txt"), "is not a weights file"),
    (lambda d: str(d), "is a folder"),
    (lambda d: "imagenet21k", "vgg16 has pretrained weights 'imagenet' only, not 'imagenet21k'"),
])
def test_bad_values_are_setting_errors_naming_the_param(tmp_path, make, message):
    with pytest.raises(SettingError, match=message) as e:
        kw.check_weights("vgg16", make(tmp_path), pretrained=("imagenet",))
    assert e.value.param == "weights"
    assert ".weights.h5" in str(e.value), "the message says what is accepted"


_EVERY_BRANCH = """
import json, sys
from kerascnn.errors import SettingError
from kerascnn.models import weights as w

results = []
for value in (None, "None", "ImageNet", sys.argv[1], sys.argv[1] + ".missing.weights.h5", "imagenet21k"):
    try:
        results.append(w.check_weights("vgg16", value, ("imagenet",)))
    except SettingError as e:
        results.append("SettingError: " + e.param)
print(json.dumps({"results": results, "heavy": sorted({"keras", "tensorflow", "h5py"} & set(sys.modules))}))
"""


def test_check_weights_needs_no_tensorflow(tmp_path):
    """Every branch (no weights, a weight name, a file, a missing file, an unknown name) in a fresh
    process: the right answers, and neither Keras nor TensorFlow (nor h5py) imported on the way."""
    weights_file = tmp_path / "mine.weights.h5"
    weights_file.write_bytes(b"not read: only the name and existence count")
    proc = subprocess.run([sys.executable, "-c", _EVERY_BRANCH, str(weights_file)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["results"] == [None, None, "imagenet", str(weights_file), "SettingError: weights",
                                 "SettingError: weights"]
    assert report["heavy"] == []


# ---------------------------------------------------------------------------------------------
# The ImageNet file: names, cache, network probe

@pytest.mark.parametrize("application, include_top, shape, alpha, name", [
    ("VGG16", False, (32, 32, 3), 1.0, "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    ("resnet50_v2", True, (224, 224, 3), 1.0, "resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels.h5"),
    ("mobilenet", False, (128, 128, 3), 0.5, "mobilenet/mobilenet_5_0_224_tf_no_top.h5"),
    ("mobilenet_v2", True, (160, 160, 3), 0.35,
     "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_160.h5"),
    ("mobilenet_v2", False, (160, 160, 3), 1.0,
     "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
])
def test_imagenet_file_names(keras_home, application, include_top, shape, alpha, name):
    found = kw.imagenet_file(application, include_top, shape, alpha)
    assert found.url == kw.WEIGHTS_URL + name
    assert found.path == str(keras_home / name.split("/")[1])


def test_unknown_networks_and_alphas_have_no_file():
    assert kw.imagenet_file("lenet5") is None
    assert kw.imagenet_file("mobilenet", alpha=0.3) is None


def test_keras_keeps_its_top_only_for_imagenet_classes_at_the_paper_input():
    assert kw.imagenet_top(True, 1000, (224, 224, 3), (224, 224, 3))
    assert not kw.imagenet_top(True, 10, (224, 224, 3), (224, 224, 3))
    assert not kw.imagenet_top(True, 1000, (160, 160, 3), (224, 224, 3))
    assert not kw.imagenet_top(False, 1000, (224, 224, 3), (224, 224, 3))


def test_a_cached_file_is_found_without_the_network(keras_home, monkeypatch):
    monkeypatch.setattr(kw, "is_online", lambda *a, **k: pytest.fail("probed although the file is cached"))
    keras_home.mkdir(parents=True)
    (keras_home / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"stand-in")
    found = kw.resolve_imagenet("VGG16", include_top=False, input_shape=(32, 32, 3))
    assert found.cached and found.path == str(keras_home / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")


def test_offline_without_the_file_is_a_user_error_naming_it(keras_home, monkeypatch):
    monkeypatch.setattr(kw, "is_online", lambda *a, **k: False)
    with pytest.raises(UserError) as e:
        kw.resolve_imagenet("MobileNetV2", model="mobilenet_v2", include_top=False, input_shape=(96, 96, 3))
    file = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    message = str(e.value)
    assert message.startswith("mobilenet_v2: ") and "\n" not in message
    assert f"{kw.WEIGHTS_URL}mobilenet_v2/{file}" in message
    assert f"into {keras_home}/" in message and "--weights PATH" in message


def test_online_without_the_file_lets_keras_download(keras_home, monkeypatch):
    monkeypatch.setattr(kw, "is_online", lambda *a, **k: True)
    found = kw.resolve_imagenet("Xception", include_top=True)
    assert not found.cached and found.file_name == "xception_weights_tf_dim_ordering_tf_kernels.h5"


@pytest.fixture
def listening_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def no_proxy_env(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_probe_connects_or_says_offline(listening_port, no_proxy_env):
    assert kw.is_online(f"http://127.0.0.1:{listening_port}/", timeout=2)
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert not kw.is_online(f"http://127.0.0.1:{closed}/", timeout=2)


def test_probe_goes_through_the_https_proxy(listening_port, no_proxy_env, monkeypatch):
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{listening_port}")
    assert kw.is_online("https://weights.invalid/", timeout=2)  # .invalid never resolves: the proxy answered


def test_probe_gives_up_on_a_hanging_lookup_in_time(no_proxy_env, monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(3)
        raise OSError("timed out")

    import socket

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.perf_counter()
    assert not kw.is_online("https://storage.googleapis.com/", timeout=0.2)
    assert time.perf_counter() - start < 1.5


# ---------------------------------------------------------------------------------------------
# Wired into the builders

def test_offline_create_model_fails_before_keras_is_asked(keras_home, monkeypatch):
    from keras.src.utils import file_utils

    from kerascnn.models import create_model

    monkeypatch.setattr(kw, "is_online", lambda *a, **k: False)
    monkeypatch.setattr(file_utils, "get_file", lambda *a, **k: pytest.fail("Keras was asked to download"))
    start = time.perf_counter()
    with pytest.raises(ModelError, match="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"):
        create_model("mobilenet_v2", input_shape=(32, 32, 3), include_top=False, weights="imagenet")
    assert time.perf_counter() - start < 2, "fails before building the network"


class _Asked(Exception):
    pass


def _slow(*values):
    return pytest.param(*values, marks=pytest.mark.slow)


# Each file-naming rule (the standard stems, MobileNet's alpha text, MobileNetV2's size rule) with
# and without Keras's top (kept at 1000 classes and the paper's input). The networks that take
# seconds to build only follow the standard rule: they run with -m slow.
@pytest.mark.parametrize("model, kwargs", [
    ("vgg16", {"include_top": False, "input_shape": (32, 32, 3)}),
    ("mobilenet", {"alpha": 0.25}),
    ("mobilenet_v2", {"alpha": 0.35, "include_top": False, "input_shape": (96, 96, 3)}),
    ("mobilenet_v2", {"alpha": 0.35}),
    _slow("vgg19", {"include_top": False, "input_shape": (32, 32, 3)}),
    _slow("resnet50", {"include_top": False, "input_shape": (32, 32, 3)}),
    _slow("resnet152_v2", {"num_classes": 10, "input_shape": (32, 32, 3)}),
    _slow("inception_v3", {"include_top": False, "input_shape": (75, 75, 3)}),
    _slow("inception_resnet_v2", {"include_top": False, "input_shape": (75, 75, 3)}),
    _slow("xception", {}),
])
def test_resolved_file_is_the_one_keras_asks_for(keras_home, monkeypatch, model, kwargs):
    from keras.src.utils import file_utils

    from kerascnn.models import create_model, keras_apps

    asked, resolved = [], []
    monkeypatch.setattr(kw, "is_online", lambda *a, **k: True)
    monkeypatch.setattr(keras_apps, "resolve_imagenet",
                        lambda *a, **k: resolved.append(kw.resolve_imagenet(*a, **k)) or resolved[-1])

    def get_file(fname=None, origin=None, **_):
        asked.append((fname, origin))
        raise _Asked

    monkeypatch.setattr(file_utils, "get_file", get_file)
    with pytest.raises(_Asked):
        create_model(model, weights="imagenet", **kwargs)
    assert asked == [(resolved[0].file_name, resolved[0].url)]
