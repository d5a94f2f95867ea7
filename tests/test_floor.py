"""The one no-attack floor: tie-aware agreement of the map at seeds s and s+1 (method.md §7)."""
import pytest
import torch

from rrs.floor import floor_seeds, no_attack_floor
from rrs.metrics import tie_aware_intersection
from rrs.settings import MapSettings
from rrs.smoothing import smooth


def test_floor_is_the_two_seed_tie_aware_intersection(tiny_model, tiny_input):
    s = MapSettings(method="rrs", samples=3, cell=2, k=4, seed=5)
    f = no_attack_floor(tiny_model, tiny_input, s)
    a = smooth(tiny_model, tiny_input, s).map[0]
    b = smooth(tiny_model, tiny_input, s.replace(seed=6)).map[0]
    assert f.seeds == floor_seeds(s) == (5, 6) and f.k == 4
    assert f.topk_intersection == pytest.approx(tie_aware_intersection(a, b, 4))
    torch.testing.assert_close(f.map_a, a)
    torch.testing.assert_close(f.map_b, b)
    # a given seed-s map is reused, not recomputed: pass a different one and it is the one compared
    given = torch.flip(a, dims=(0, 1)).contiguous()
    again = no_attack_floor(tiny_model, tiny_input, s, map_a=given, batch_size=1)
    torch.testing.assert_close(again.map_a, given)
    assert again.topk_intersection == pytest.approx(tie_aware_intersection(given, b, 4))


def test_raw_methods_have_floor_one(tiny_model, tiny_input):
    f = no_attack_floor(tiny_model, tiny_input, MapSettings(method="vanilla", k=5))
    assert f.topk_intersection == 1.0 and f.spearman == pytest.approx(1.0)


def test_small_t_rrs_floor_is_not_inflated_by_index_tie_breaks(tiny_model, tiny_input):
    """At T=1 an RRS map takes two values; an index tie-break would agree on low-index cells."""
    s = MapSettings(method="rrs", samples=1, k=0.3, scoring_param=0.5)
    f = no_attack_floor(tiny_model, tiny_input, s)
    assert 0.0 <= f.topk_intersection <= 1.0
    n = f.map_a.numel()
    from rrs.metrics import topk_membership
    ma, mb = topk_membership(f.map_a, f.k), topk_membership(f.map_b, f.k)
    assert f.topk_intersection == pytest.approx(float((ma * mb).sum()) / f.k)
    assert n == 64
