"""A session that survives a reload, and uploads with one rule (issue 19, items 1, 6, 7).

A reload is a new ``AppTest`` (a new, empty session) opened at the URL the first one wrote
into ``st.query_params``; the server-wide caches and stores are shared, as in one
``streamlit run`` process.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui import caching

from test_app import APP, TIMEOUT, image_uploader, metrics, new_app, ok, png_bytes, shapes_png

ROOT = Path(__file__).resolve().parent.parent


def reload(at: AppTest, page: str | None = None) -> AppTest:
    """The browser's reload of ``at``'s page: a new session with the same URL."""
    again = AppTest.from_file(APP, default_timeout=TIMEOUT)
    again.query_params.update(at.query_params)
    again.run()
    if page:
        again.switch_page(page).run()
    return ok(again)


def sidebar_captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.sidebar.caption)


def bomb_png(side: int = 100_000) -> bytes:
    """A ~60-byte PNG declaring ``side``×``side`` pixels (too large to decode)."""
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


# ------------------------------------------------------------------------------ uploads

def test_a_refused_file_leaves_the_uploader_empty_beside_the_upload_in_use():
    at = new_app()
    image_uploader(at).set_value(("good.png", shapes_png(0), "image/png")).run()
    image_uploader(at).set_value(("notes.png", b"not an image" * 20, "image/png")).run()
    ok(at)
    assert "Using your upload **good.png**" in sidebar_captions(at)
    # the refused file's name is not left in the widget beside "Using your upload good.png"
    assert image_uploader(at).value is None
    assert any("notes.png" in e.value for e in at.error)


def test_picking_the_same_refused_file_again_shows_the_error_again():
    at = new_app()
    bad = ("notes.png", b"not an image" * 20, "image/png")
    image_uploader(at).set_value(bad).run()
    assert any("notes.png" in e.value for e in at.error)
    at.button(key="home_use_chelsea").click().run()             # a sample pick clears the error
    assert not at.error
    # a browser's file input fires no change when the file it holds is picked again: the
    # widget must be a new, empty one for the same file to reach the app
    assert image_uploader(at).value is None
    image_uploader(at).set_value(bad).run()                      # the same file, picked again
    ok(at)
    assert any("notes.png" in e.value for e in at.error), "the same refused file must be refused again"


@pytest.mark.parametrize("name,data,needle", [
    ("huge.png", "bytes", "too large"),
    ("bomb.png", "pixels", "decompression bomb"),
    ("notes.png", b"this is not an image at all" * 10, "not"),
])
def test_one_rule_for_oversized_and_non_images_the_previous_upload_stays(name, data, needle):
    if data == "bytes":
        data = b"\x89PNG\r\n\x1a\n" + bytes(26 * 1024 * 1024)    # over rrs.images.DEFAULT_MAX_BYTES
    elif data == "pixels":
        data = bomb_png()
    at = new_app()
    image_uploader(at).set_value(("good.png", shapes_png(0), "image/png")).run()
    good = metrics(at)["Prediction"].value
    # the browser replaces a file in a widget by clearing it first: that is no removal
    image_uploader(at).set_value(None).run()
    image_uploader(at).set_value((name, data, "image/png")).run()
    ok(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert name in errors[0] and needle in errors[0].lower(), errors
    assert "Still showing your previous upload **good.png**" in errors[0]
    assert metrics(at)["Prediction"].value == good
    assert "Using your upload **good.png**" in sidebar_captions(at)
    assert image_uploader(at).value is None


# ------------------------------------------------------------------------------ reloads

def test_the_url_names_the_image_the_model_and_the_session():
    at = new_app()
    assert at.query_params["image"] == "coffee" and at.query_params["model"] == "tiny"
    assert len(at.query_params["s"]) >= 8
    image_uploader(at).set_value(("good.png", shapes_png(0), "image/png")).run()
    digest = caching.C.image_digest(shapes_png(0))
    assert at.query_params["image"] == f"upload:{digest}"


def test_a_reload_restores_the_upload_the_model_and_every_setting():
    at = new_app()
    image_uploader(at).set_value(("good.png", shapes_png(0), "image/png")).run()
    at.switch_page("pages/1_Explain.py").run()
    at.select_slider(key="explain_samples").set_value(32).run()
    at.switch_page("pages/3_Attack.py").run()
    at.slider(key="attack_steps").set_value(3).run()
    ok(at)
    again = reload(at, "pages/1_Explain.py")
    assert "Using your upload **good.png**" in sidebar_captions(again)
    assert again.selectbox(key="sb_model").value == "tiny"
    assert again.select_slider(key="explain_samples").value == 32
    again.switch_page("pages/3_Attack.py").run()
    assert again.slider(key="attack_steps").value == 3
    # a reload is a new session: it writes its own token (a shared link ties no two sessions)
    assert again.query_params["s"] != at.query_params["s"]


def test_a_link_with_image_and_model_alone_opens_them():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"image": "chelsea", "model": "tiny"})
    at.run()
    ok(at)
    assert at.selectbox(key="sb_sample").value == "chelsea"
    assert at.selectbox(key="sb_model").value == "tiny"
    assert "fast" not in at.query_params and not at.toggle(key="sb_fast").value


def test_a_link_keeps_the_fast_preset():
    """A teacher's link (image, model, fast preset; no session token) opens in the fast preset
    with its settings, and turning it off takes it out of the URL."""
    from ui.state import PRESET

    at = new_app()
    at.toggle(key="sb_fast").set_value(True).run()
    assert at.query_params["fast"] == "1"
    link = AppTest.from_file(APP, default_timeout=TIMEOUT)
    link.query_params.update({k: at.query_params[k] for k in ("image", "model", "fast")})
    link.run().switch_page("pages/2_Certify.py").run()
    ok(link)
    assert link.toggle(key="sb_fast").value
    key, (normal, fast) = next((k, v) for k, v in PRESET.items() if k.startswith("certify_") and v[0] != v[1])
    assert link.session_state[key] == fast != normal
    link.toggle(key="sb_fast").set_value(False).run()
    assert "fast" not in link.query_params


def test_an_upload_link_restores_the_upload_in_a_new_session():
    at = new_app()
    image_uploader(at).set_value(("good.png", shapes_png(0), "image/png")).run()
    link = AppTest.from_file(APP, default_timeout=TIMEOUT)
    link.query_params.update({"image": at.query_params["image"], "model": "tiny"})
    link.run()
    ok(link)
    assert "Using your upload **good.png**" in sidebar_captions(link)
    assert metrics(link)["Prediction"].value == metrics(at)["Prediction"].value


def test_a_reload_after_an_attack_shows_it_from_the_cache_without_computing():
    at = new_app()
    at.switch_page("pages/3_Attack.py").run()
    at.multiselect(key="attack_methods").set_value(["vanilla"]).run()
    at.slider(key="attack_steps").set_value(2).run()
    at.button(key="attack_run").click().run()
    ok(at)
    assert any("computed now" in c.value for c in at.caption)
    before = dict(caching.COMPUTED)
    again = reload(at, "pages/3_Attack.py")
    # the result is on the page without pressing Run, and nothing was computed again
    assert any("from cache" in c.value for c in again.caption), [c.value for c in again.caption]
    assert dict(caching.COMPUTED) == before


def test_no_message_is_sent_by_reference(monkeypatch):
    """The cause of "Cached ForwardMsg MISS" (streamlit#11357) is off: with the app's
    config.toml no message is cacheable, so the server never sends a reference the browser
    may already have dropped."""
    from streamlit import config
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.forward_msg_cache import populate_hash_if_needed

    def image_message():
        msg = ForwardMsg()
        msg.delta.new_element.markdown.body = "x" * 2_000_000     # the size of a map as a PNG
        return msg

    monkeypatch.chdir(ROOT)
    config.get_config_options(force_reparse=True)
    try:
        msg = image_message()
        populate_hash_if_needed(msg)
        assert not msg.metadata.cacheable
        # without the setting, such a message would be sent by reference
        config.set_option("global.minCachedMessageSize", 10e3)
        msg = image_message()
        populate_hash_if_needed(msg)
        assert msg.metadata.cacheable
    finally:
        config.get_config_options(force_reparse=True)


def _page_time_script():
    import time

    import streamlit as st

    from ui import runs, state
    from ui import widgets as W

    state.page_started()
    time.sleep(0.3)                                   # drawing
    with runs.measuring():
        time.sleep(0.4)                               # a first visit's measurement
    W.with_progress("a job", lambda progress: time.sleep(0.5))
    st.write(f"page {state.page_seconds():.3f}")


def test_the_pages_own_time_leaves_out_its_jobs_and_measurements():
    """What a page takes to draw before a step's job starts (added to Learn's predictions: its
    step 3 started a 2-s attack 1.2 s after the click): the run's time, less the jobs and
    first-visit measurements in it (Learn's step-4 prediction said 4 s after step 3's attack
    ran in the same run, for a 1-s map)."""
    at = AppTest.from_function(_page_time_script, default_timeout=30).run()
    ok(at)
    seconds = float(next(m.value for m in at.markdown if m.value.startswith("page ")).split()[1])
    assert 0.3 <= seconds < 0.3 + 0.35, seconds
