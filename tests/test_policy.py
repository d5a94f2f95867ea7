"""The batch and time policy (rrs.compute.policy): one batch rule for integrated gradients on
every device, predictions from the measured rates, exact on hand-made rates."""
from __future__ import annotations

import pytest
import torch

from rrs.compute import device as D
from rrs.compute import memory as M
from rrs.compute import policy
from rrs.models import load_tiny
from rrs.settings import MapSettings
from rrs.timing import RATES, sample_key


def test_batch_rule_is_shared_by_the_default_and_the_cuda_sizes():
    x224, x32 = torch.zeros(1, 3, 224, 224), torch.zeros(1, 3, 32, 32)
    assert policy.batch_size_for(x224, "vanilla") == 16
    assert policy.batch_size_for(x224, "integrated_gradients") == 16 // policy.IG_BATCH_DIVISOR == 2
    assert policy.batch_size_for(x32, "vanilla") == 256                   # 16·49 capped at 256
    assert policy.batch_size_for(x32, "integrated_gradients") == 16 * 49 // 8
    tiny = load_tiny()
    for free in (M.GB, 40 * M.GB):
        plain = D.batch_size(tiny, x32, "vanilla", 16, free=free)
        assert D.batch_size(tiny, x32, "integrated_gradients", 16, free=free) == \
            policy.attribution_batch(plain, "integrated_gradients")
    assert policy.attribution_batch(3, "integrated_gradients") == 1 and policy.attribution_batch(3, "vanilla") == 3


def test_predictions_follow_the_measured_rates():
    model = load_tiny()
    x = torch.zeros(1, 3, model.input_size, model.input_size)
    s = MapSettings(method="rrs", samples=40)
    RATES.clear()
    try:
        assert policy.predict_seconds(model, x, s, 40) is None          # nothing measured: no guess
        RATES.record(sample_key(model, x, s), 100.0, 10.0)                # 10 samples per second
        assert policy.predict_seconds(model, x, s, 40) == pytest.approx(4.0)
        assert policy.predict_seconds(model, x[0], s, 40) == pytest.approx(4.0)   # (3, H, W) too
        assert policy.sample_rate(model, x, s) == pytest.approx(10.0)
    finally:
        RATES.clear()


def test_calibrate_measures_a_rate_when_none_is_known():
    model = load_tiny()
    x = torch.rand(1, 3, model.input_size, model.input_size, generator=torch.Generator().manual_seed(0))
    s = MapSettings(method="rrs", samples=8)
    RATES.clear()
    try:
        rate = policy.sample_rate(model, x, s)                            # runs a batched pilot
        assert rate > 0 and RATES.rate(sample_key(model, x, s)) is not None
    finally:
        RATES.clear()
