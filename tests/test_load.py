"""A classroom on one server: 30 real browser sessions against a real
``streamlit run`` open Explain (every fifth presses *Run attack*) at once.

None fails; each gets its own result, equal to a single-session computation of the settings
its JSON export records (the numbers the page shows are the export's); the server's peak RSS
(VmHWM) stays within its memory budget above the idle server; ``/_stcore/health`` answers
within a second throughout. The server uses the tiny model (``RRS_DEFAULT_MODEL=tiny``) so
the test finishes in a few minutes on 2 cores; ``bench/load.py`` prints the timings.
(AppTest cannot do this: its runtime is a process-wide singleton.)
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from bench import load as L  # bench/load.py: the harness (tests/conftest.py puts the checkout on the path)
from rrs.compute.memory import parse_budget
from rrs.images import load_image, load_sample, to_tensor
from rrs.models import load_model
from rrs.settings import AttackSettings, MapSettings
from ui import compute as C

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1800)]

SESSIONS = 30
BUDGET = "1GB"


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    assert Path(L.CHROMIUM).exists(), "Debian chromium is missing: apt-get install -y chromium"
    with L.serve("tiny", BUDGET) as (url, pid):
        out = L.classroom(url, pid, SESSIONS, attack_every=5, folder=tmp_path_factory.mktemp("uploads"))
    print(L.report(out, parse_budget(BUDGET, 1)))
    return out


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny")


def _image(record):
    img = record["image"]
    if "sample" in img:
        return load_sample(img["sample"]), None
    data = Path(img["upload"]).read_bytes()
    return load_image(data, name=Path(img["upload"]).name), hashlib.sha256(data).hexdigest()[:16]


def test_no_session_fails_and_each_has_its_own_image(classroom):
    records = classroom["records"]
    assert len(records) == SESSIONS
    assert [r["errors"] for r in records] == [0] * SESSIONS
    for r in records:
        prov = r["export"]["provenance"]
        if "sample" in r["image"]:
            assert prov["image"] == r["image"]["sample"]
        else:
            assert prov["image_sha256_16"] == _image(r)[1]


def test_each_result_equals_a_single_session_run(classroom, tiny):
    for r in classroom["records"]:
        loaded, _ = _image(r)
        size = r["export"]["provenance"]["working_size"]
        x = to_tensor(loaded, size, resize_size=tiny.resize_for(size))
        export = r["export"]
        if not r["attack"]:
            settings = MapSettings.from_dict(export["settings"])
            alone = C.compute_map(tiny, x, settings)
            np.testing.assert_array_equal(np.asarray(export["results"]["map"]), alone.map)
            assert export["results"]["label"] == alone.label
            continue
        attack = AttackSettings.from_dict(export["settings"]["attack"])
        for method, shown in export["results"]["methods"].items():
            settings = MapSettings.from_dict(export["settings"]["map"][method])
            alone = C.attack_method(tiny, x, settings, attack).row()
            for key in ("attacked_topk_intersection", "no_attack_floor", "label_after", "spearman"):
                assert shown[key] == alone[key], (r["i"], method, key)


def test_peak_memory_within_the_budget_and_the_server_keeps_answering(classroom):
    """Peak RSS above idle within the budget; every health poll answered, at least 95% of them
    within a second and at most one in a hundred after two.

    Two things had made several polls take 1.5–4.5 s while 30 page runs started at once: the
    browsers (chromium, run as root, raised its own processes above the server's priority;
    bench/load.py keeps them at nice 19, as if they ran on the students' machines) and
    Streamlit's full garbage collection after every script run (ui.caching.settle_heap). Since
    then 13 of 14 runs here had every poll within a second (slowest 0.68 s); one run had one
    poll of 1.5 s: the event loop waits while it starts each rerun's script thread (Streamlit's
    ``Thread.start``), which needs the interpreter lock that the page scripts share. On CI
    (a machine shared with other jobs) one run had one poll of 2.4 s among 200 under a second,
    so the bound on the slowest answers is a share, not the single slowest: a server that
    stalls keeps stalling and fails it."""
    budget = parse_budget(BUDGET, 1)
    assert classroom["peak_rss"] - classroom["idle_rss"] <= budget
    health = np.asarray(classroom["health"])
    assert len(health) >= 20, "the health poller hardly ran"
    assert np.isfinite(health).all(), "a health poll failed or timed out"
    print(f"health: median {np.median(health) * 1000:.0f} ms, slowest {health.max() * 1000:.0f} ms")
    late = int((health >= 2.0).sum())
    assert (health < 1.0).mean() >= 0.95 and late <= len(health) / 100, \
        f"{late} of {len(health)} health answers took 2 s or more (slowest {health.max():.2f} s)"
