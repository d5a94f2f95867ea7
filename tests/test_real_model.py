"""One real-model run of the core pipeline on the offline default model."""
import numpy as np
import pytest

from rrs.certify import certify
from rrs.images import load_sample
from rrs.models import load_default, predict_topk
from rrs.settings import CertifySettings, MapSettings
from rrs.smoothing import raw_map, smooth

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return load_default()


@pytest.fixture(scope="module")
def coffee(model):
    return model.prepare(load_sample("coffee"))


def test_coffee_is_espresso_or_cup(model, coffee):
    top = predict_topk(model, coffee, 1)[0]
    assert top[1] in ("espresso", "cup")


def test_rrs_map_at_t8_runs_and_certifies(model, coffee):
    res = smooth(model, coffee, MapSettings(method="rrs", sigma=0.15, samples=8), batch_size=8)
    assert res.map.shape == (1, 224, 224)
    assert res.map.sum().item() == pytest.approx(1.0, abs=1e-4)
    assert int(res.target[0]) == predict_topk(model, coffee, 1)[0][0]
    # Grad-CAM cells are the 7×7 feature grid; its RRS map is far more stable than pixels
    cam = smooth(model, coffee, MapSettings(method="rrs", base="gradcam", samples=8, scoring_param=5), batch_size=8)
    assert cam.grid == (7, 7)
    rep = certify(cam.stats(), k=5, noise=cam.noise, settings=CertifySettings(betas=(0.6,), cell_radii=False))
    assert rep.rdp_plugin[0].radius >= 0 and np.isfinite(rep.rdp_plugin[0].radius)
    raw = raw_map(model, coffee, MapSettings(method="gradcam"))
    assert raw.shape == (1, 7, 7) and raw.sum() > 0
