"""Settings objects: validation once with a clear message, JSON round trips, one norm type,
one meaning of σ, and the method registry every front end reads."""
import json
import math

import numpy as np
import pytest

from rrs.jsonio import dumps, plain
from rrs.methods import METHODS, RAW_METHODS, SMOOTH_METHODS, method_info
from rrs.noise import Gaussian, Laplace
from rrs.settings import (L1, L2, LINF, AttackSettings, CertifySettings, MapSettings, Norm, count_for)


@pytest.mark.parametrize("text,p", [("l1", 1.0), ("ℓ1", 1.0), (1, 1.0), ("2", 2.0), ("L2", 2.0), (2.0, 2.0),
                                    ("linf", math.inf), ("inf", math.inf), ("ℓ∞", math.inf), (math.inf, math.inf),
                                    ("l3.5", 3.5), (Norm(2.0), 2.0)])
def test_norm_parse(text, p):
    n = Norm.parse(text)
    assert n.p == p and float(n) == p
    assert Norm.parse(n.key) == n and Norm.parse(n.label) == n


@pytest.mark.parametrize("bad", ["l0.5", "x", 0.5, True, None, float("nan")])
def test_norm_rejects(bad):
    with pytest.raises(ValueError, match="norm"):
        Norm.parse(bad)


def test_norm_keys_labels_and_per_pixel():
    assert (L1.key, L2.key, LINF.key) == ("l1", "l2", "linf")
    assert (L1.label, L2.label, LINF.label) == ("ℓ1", "ℓ2", "ℓ∞")
    assert L2.per_pixel(2.0, 4) == pytest.approx(1.0) and LINF.per_pixel(0.1, 100) == 0.1
    assert L1.per_pixel(8.0, 4) == pytest.approx(2.0)


@pytest.mark.parametrize("cls,obj", [(MapSettings, MapSettings(method="sparsified", noise="laplace", sigma=0.3,
                                                                 k=7, tau=0.2, seed=4)),
                                     (MapSettings, MapSettings(scoring="custom", scoring_values=(0.5, 0.3, 0.2))),
                                     (AttackSettings, AttackSettings(norm="l2", epsilon=1.5, steps=3, eot=2)),
                                     (CertifySettings, CertifySettings(norm="inf", eta=0.01, betas=(1.0, 0.5)))])
def test_round_trip_through_json(cls, obj):
    back = cls.from_dict(json.loads(dumps(obj.to_dict())))
    assert back == obj and hash(back) == hash(obj)  # frozen: usable as a cache key


def test_unknown_and_bad_fields_name_the_setting():
    with pytest.raises(ValueError, match="unknown AttackSettings field"):
        AttackSettings.from_dict({"budget": 3})
    with pytest.raises(ValueError, match="ℓ∞ budget above 1"):
        AttackSettings(epsilon=2.0)
    with pytest.raises(ValueError, match="ℓ2 and ℓ∞"):
        AttackSettings(norm="l1")
    with pytest.raises(ValueError, match="eta"):
        CertifySettings(eta=1.0)
    with pytest.raises(ValueError, match="beta"):
        CertifySettings(betas=(1.2,))
    with pytest.raises(ValueError, match="steps"):
        AttackSettings(steps=0)


def test_sigma_is_the_standard_deviation_for_every_family():
    assert MapSettings(sigma=0.2).noise_model() == Gaussian(0.2)
    lap = MapSettings(noise="laplace", sigma=0.2).noise_model()
    assert lap == Laplace(0.2 / math.sqrt(2))
    import torch
    draws = lap.sample((200_000,), generator=torch.Generator().manual_seed(0))
    assert float(draws.std()) == pytest.approx(0.2, rel=0.01)


def test_counts_and_fractions():
    assert count_for(0.05, 49) == 3 and count_for(3, 49) == 3 and count_for(0.1, 10) == 1
    assert MapSettings(k=0.05).k_for(196) == 10
    with pytest.raises(ValueError, match="k = 49 is out of range"):
        MapSettings(k=49).k_for(49)
    with pytest.raises(ValueError, match="only 1 cell"):
        MapSettings().k_for(1)


def test_effective_cell_and_attribution():
    s = MapSettings(method="rrs", base="gradcam", cell=16)
    assert s.attribution == "gradcam" and s.effective_cell == 1
    r = MapSettings(method="integrated_gradients", base="input_x_gradient", ig_steps=4, cell=8)
    assert r.attribution == "integrated_gradients" and r.effective_cell == 8
    assert r.attribution_kwargs == {"steps": 4} and not r.smoothed


def test_registry_is_the_one_source_of_names():
    assert set(METHODS) == set(RAW_METHODS) | set(SMOOTH_METHODS)
    assert SMOOTH_METHODS == ("smoothgrad", "sparsified", "rrs")
    assert method_info("rrs").certificate == ("rdp", "cdf")
    assert all(METHODS[m].smoothed for m in SMOOTH_METHODS) and not any(METHODS[m].smoothed for m in RAW_METHODS)
    with pytest.raises(ValueError, match="unknown method 'x'"):
        method_info("x")


def test_plain_json_values():
    import torch
    out = plain({"a": np.float32(1.5), "b": float("inf"), "c": torch.tensor([1.0, float("nan")]), "n": LINF,
                 "s": MapSettings(k=3)})
    assert out["a"] == 1.5 and out["b"] == "inf" and out["c"] == [1.0, "nan"] and out["n"] == "linf"
    assert out["s"]["k"] == 3
    assert dumps({"m": [[1, 2], [3, 4]]}) == '{\n "m": [\n  [1, 2],\n  [3, 4]\n ]\n}'
