"""One real-model run of the core pipeline on the offline default model."""
import numpy as np
import pytest
import torch

from rrs.certify import certify
from rrs.images import load_sample
from rrs.models import load_default, predict_topk
from rrs.noise import Gaussian
from rrs.scoring import topk_uniform
from rrs.smoothing import raw_map, smooth

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return load_default()


@pytest.fixture(scope="module")
def coffee(model):
    return load_sample("coffee").to_tensor(model.input_size)


def test_coffee_is_espresso_or_cup(model, coffee):
    top = predict_topk(model, coffee, 1)[0]
    assert top[1] in ("espresso", "cup")


def test_rrs_map_at_t8_runs_and_certifies(model, coffee):
    res = smooth(model, coffee, method="rrs", noise=Gaussian(0.15), samples=8, batch_size=8,
                 generator=torch.Generator().manual_seed(0))
    assert res.map.shape == (1, 224, 224)
    assert res.map.sum().item() == pytest.approx(1.0, abs=1e-4)
    assert int(res.target[0]) == predict_topk(model, coffee, 1)[0][0]
    # Grad-CAM cells are the 7×7 feature grid; its RRS map is far more stable than pixels
    cam = smooth(model, coffee, method="rrs", base="gradcam", samples=8, batch_size=8,
                 scoring=topk_uniform(49, 5), generator=torch.Generator().manual_seed(0))
    assert cam.grid == (7, 7)
    rep = certify(cam.stats(), k=5, noise=cam.noise, betas=(0.6,), per_cell=False)
    assert rep.rdp_plugin[0].radius >= 0 and np.isfinite(rep.rdp_plugin[0].radius)
    raw = raw_map(model, coffee, base="gradcam")
    assert raw.shape == (1, 7, 7) and raw.sum() > 0
