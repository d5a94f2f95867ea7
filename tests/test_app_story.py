"""The app tells a true story: every text computed from the numbers it shows,
uploads that say which image is in use, short metric cards, readable tables, predicted times
and honest cache notes. Driven headless with ``AppTest`` on the tiny CNN.
"""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from rrs.certify import certify
from rrs.images import load_sample, to_tensor
from rrs.settings import L2, CertifySettings, MapSettings
from rrs.timing import RATES, sample_key
from ui import compute as C
from ui import state as S

from test_app import charts, image_uploader, metrics, new_app, ok, png_bytes, shapes_png, tiny_model

NUMBER = r"\d+(?:\.\d+)?(?:e-?\d+)?"


def figures(at) -> dict:
    """Plotly figures by their element key suffix (``…-explain_raw`` -> ``explain_raw``)."""
    out = {}
    for el in at.get("plotly_chart"):
        key = el.proto.id.rsplit("-", 1)[-1]
        out[key] = json.loads(el.proto.spec)
    return out


def array(v) -> np.ndarray:
    """A plotly array, plain or binary-encoded (``{"dtype", "bdata", "shape"}``)."""
    if isinstance(v, dict):
        data = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return data.reshape([int(n) for n in str(v.get("shape", data.size)).split(",")]).astype(float)
    return np.array(v, dtype=float)


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def image_captions(at) -> list[str]:
    return [i.caption for el in at.get("image") for i in el.proto.imgs]


def markdowns(at) -> list[str]:
    return [m.value for m in at.markdown]


def attack_page(**state):
    at = new_app(**state)
    at.switch_page("pages/3_Attack.py").run()
    at.multiselect(key="attack_methods").set_value(["vanilla", "rrs"]).run()
    at.slider(key="attack_steps").set_value(2).run()
    at.slider(key="attack_eot").set_value(1).run()
    at.select_slider(key="attack_samples").set_value(8).run()
    return at


# ------------------------------------------------------------- what a new user hits

def test_learn_step6_title_caption_and_text_state_the_same_radius_and_count():
    at = new_app()
    at.switch_page("pages/5_Learn.py").run()
    at.button(key="learn_run6").click().run()
    ok(at)
    fig = figures(at)["learn_fig6"]
    title = fig["layout"]["title"]["text"]
    caption = next(c for c in captions(at) if c.startswith("Blue") or c.startswith("Orange"))
    text = next(m for m in markdowns(at) if "patches" in m and "lightbulb" in m)
    radius = re.search(rf"size ({NUMBER})", title).group(1)
    shown, k = (int(v) for v in re.search(r"(\d+) of (\d+) patches", title).groups())
    assert radius in caption and radius in text                      # one number everywhere
    assert f"{shown} of the {k}" in text
    guaranteed = title.startswith("Guaranteed")
    assert ("estimate" in caption.lower()) != guaranteed and ("estimate" in text.lower()) != guaranteed
    assert "No radius can be certified" not in text
    # the blue cells drawn are the cells counted, and they come from the library's certificate
    z = array(fig["data"][1]["z"])
    assert int(np.sum(z == 2)) == shown
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    mr = C.compute_map(model, x, MapSettings(method="rrs", cell=8, k=0.1, samples=512, sigma=0.25, seed=0))
    cr = C.map_certificates(mr)
    radii = cr.cell_radii("best", finite=guaranteed)[cr.report.selected]
    assert k == len(cr.report.selected)
    # each blue cell's own certified radius exceeds the radius in the title (3 significant digits)
    assert int((radii > float(radius) * 1.01).sum()) <= shown <= int((radii > float(radius) * 0.99).sum())


def test_replacing_a_good_upload_with_a_bad_file_says_what_is_shown_once_and_a_sample_pick_clears_it():
    at = new_app()
    image_uploader(at).set_value(("good.png", shapes_png(0), "image/png")).run()
    good = metrics(at)["Prediction"].value
    image_uploader(at).set_value(("broken.png", b"not an image" * 20, "image/png")).run()
    ok(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors                                   # shown once, not in two places
    assert "broken.png" in errors[0] and "previous upload **good.png**" in errors[0]
    assert metrics(at)["Prediction"].value == good                     # and that is what is shown
    # a gallery pick makes the sample the image and the error goes
    at.button(key="home_use_chelsea").click().run()
    ok(at)
    assert not at.error
    assert any("chelsea" in s.value for s in at.success)


def test_a_bad_file_after_going_back_to_the_sample_says_the_sample_is_shown_and_offers_the_upload_back():
    at = new_app()
    image_uploader(at).set_value(("good.png", shapes_png(0), "image/png")).run()
    at.button(key="sb_back_to_sample").click().run()   # the uploader is an inbox: this is the way back
    image_uploader(at).set_value(("tiny.png", png_bytes(np.zeros((4, 4, 3), np.uint8)),
                                                 "image/png")).run()
    ok(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "Showing the sample **coffee**" in errors[0]
    assert "previous image is still in use" not in errors[0]
    at.button(key="sb_previous_upload").click().run()
    ok(at)
    assert not at.error
    assert any("good.png" in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize("page", ["app.py", "pages/1_Explain.py", "pages/3_Attack.py", "pages/4_Compare.py",
                                  "pages/5_Learn.py"])
def test_metric_cards_have_short_labels_and_compact_values(page):
    """A card's label and value must fit a quarter of a 1024-px page: the number is never cut."""
    at = new_app()
    at.switch_page(page).run()
    if page.endswith("Attack.py"):
        at.multiselect(key="attack_methods").set_value(["vanilla", "smoothgrad", "rrs"]).run()
        at.slider(key="attack_steps").set_value(1).run()
        at.slider(key="attack_eot").set_value(1).run()
        at.select_slider(key="attack_samples").set_value(2).run()
        at.button(key="attack_run").click().run()
    if page.endswith("Compare.py"):
        at.multiselect(key="compare_ts").set_value([1, 2]).run()
        at.slider(key="compare_steps").set_value(1).run()
        at.slider(key="compare_eot").set_value(1).run()
        at.button(key="compare_run").click().run()
    if page.endswith("Learn.py"):
        at.button(key="learn_run3").click().run()
    ok(at)
    assert at.metric
    for m in at.metric:
        assert len(m.label) <= 20, m.label
        assert len(str(m.value)) <= 14, (m.label, m.value)


def test_compare_separates_guarantee_and_estimate_with_plain_axes_and_human_columns():
    at = new_app()
    at.switch_page("pages/4_Compare.py").run()
    at.multiselect(key="compare_methods").set_value(["vanilla", "rrs"]).run()
    at.multiselect(key="compare_ts").set_value([1, 4]).run()
    at.slider(key="compare_steps").set_value(1).run()
    at.slider(key="compare_eot").set_value(1).run()
    at.button(key="compare_run").click().run()
    ok(at)
    figs = figures(at)
    guarantee = [t["name"] for t in figs["compare_certify"]["data"]]
    estimate = [t["name"] for t in figs["compare_plugin"]["data"]]
    assert guarantee and all("finite-sample" in n for n in guarantee)
    assert estimate and all("plug-in" in n for n in estimate)
    assert "not a guarantee" in figs["compare_plugin"]["layout"]["title"]["text"]
    for key in ("compare_attack", "compare_certify", "compare_plugin"):
        for axis in ("xaxis", "yaxis"):
            title = figs[key]["layout"][axis]["title"]["text"]
            assert "_" not in title and " " in title, title
    assert any("more samples do not make the map worse" in c for c in captions(at))
    assert at.table
    for table in at.table:
        assert all("_" not in str(c) for c in table.value.columns), list(table.value.columns)


def test_stored_results_have_readable_series_names_and_columns():
    at = new_app()
    at.switch_page("pages/4_Compare.py").run()
    ok(at)
    figs = figures(at)
    if "compare_stored" not in figs:
        pytest.skip("no stored results in docs/results")
    names = [t["name"] for t in figs["compare_stored"]["data"]]
    assert names and not any(re.search(r"rrs-|\b\d+\.0\b|nan", n) for n in names), names
    table = at.table[-1].value
    assert all("_" not in str(c) for c in table.columns), list(table.columns)
    assert not any(str(m).startswith("rrs-") for m in table.get("Method", []))


def test_raw_methods_disable_sigma_and_the_noise_preview_and_gradcam_names_its_grid():
    at = new_app()
    at.switch_page("pages/1_Explain.py").run()
    assert not at.slider(key="explain_sigma").disabled
    assert any(c.startswith("one noise draw") for c in image_captions(at))
    at.selectbox(key="explain_method").set_value("vanilla").run()
    ok(at)
    assert at.slider(key="explain_sigma").disabled
    assert not any(c.startswith("one noise draw") for c in image_captions(at))
    assert any("no noise" in c for c in captions(at))
    at.selectbox(key="explain_method").set_value("gradcam").run()
    ok(at)
    rows, cols = (int(v) for v in metrics(at)["Map size"].value.split("×"))
    assert any(f"{rows}×{cols} feature grid" in m for m in markdowns(at))
    assert not any(sl.label == "Cell size" for sl in at.select_slider)


def test_a_cached_result_says_it_came_from_the_cache():
    at = new_app()
    at.switch_page("pages/1_Explain.py").run()
    at.number_input(key="explain_seed").set_value(11).run()        # a map no other test computed
    ok(at)
    assert any("computed now in" in c for c in captions(at))
    at.number_input(key="explain_seed").set_value(12).run()
    at.number_input(key="explain_seed").set_value(11).run()
    ok(at)
    note = next(c for c in captions(at) if "from cache" in c)
    assert re.search(rf"from cache \(computed earlier in {NUMBER} s\)", note)
    assert not any("computed now" in c for c in captions(at))


def test_a_gallery_click_says_the_new_prediction_next_to_the_gallery():
    at = new_app()
    at.button(key="home_use_chelsea").click().run()
    ok(at)
    top = metrics(at)["Prediction"].value
    news = [s.value for s in at.success]
    assert news and "chelsea" in news[0] and top in news[0]
    assert [t.value for t in at.toast] and top in at.toast[0].value
    at.run()                                                            # said once, not forever
    assert not at.success


def test_label_badge_is_amber_when_the_confidence_collapses():
    from ui import story
    assert story.label_badge(True, 0.94, 0.14)[1] == "orange"
    assert "94% → 14%" in story.label_badge(True, 0.94, 0.14)[0]
    assert story.label_badge(True, 0.94, 0.90)[1] == "green"
    assert story.label_badge(False, 0.94, 0.30)[1] == "red"
    at = attack_page()
    at.button(key="attack_run").click().run()
    ok(at)
    badges = [m for m in markdowns(at) if "badge[" in m]
    assert len(badges) == 2 and all("confidence" in b and "→" in b for b in badges)
    table = at.dataframe[0].value
    for badge, (kept, after) in zip(badges, zip(table["label kept"], table["confidence after"])):
        expected = story.label_badge(bool(kept), float(re.search(r"confidence (\d+)%", badge).group(1)) / 100,
                                     float(after))[1]
        assert f":{expected}-badge" in badge


# ------------------------------------------------------------------------------ the story

def test_attack_shows_the_budget_and_the_certified_radius_on_one_scale():
    at = attack_page()
    at.button(key="attack_run").click().run()
    ok(at)
    fig = figures(at)["attack_scale"]
    marks = {t["name"]: t for t in fig["data"]}
    budget = marks["attack budget"]
    assert budget["y"] == ["per pixel value (/255)"] and budget["x"][0] == pytest.approx(4.0)   # ℓ∞ 4/255
    # the radius is the library's certificate of the same map (ℓ∞ threat, β = 1)
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    mr = C.compute_map(model, x, MapSettings(method="rrs", sigma=0.15, samples=8, cell=8, k=0.05, seed=0))
    report = certify(mr.stats, mr.k, mr.settings.noise_model(), CertifySettings(norm=float("inf"), eta=0.05,
                                                                        betas=(1.0,)), dim=mr.dim)
    finite = max([c.radius for c in report.rdp_finite + report.cdf_finite] + [0.0])
    text = marks["guarantee (finite-sample)"]["text"][0]
    assert (text == "0") if finite <= 0 else float(text) == pytest.approx(finite * 255, rel=1e-2)
    edge = 10 ** fig["layout"]["xaxis"]["range"][0]         # radius 0: on the axis' left edge, not at 2× it
    x0 = marks["guarantee (finite-sample)"]["x"][0]
    assert (x0 == pytest.approx(edge)) if finite <= 0 else x0 > edge
    caption = captions(at)[[i for i, c in enumerate(captions(at)) if "attack" in c and "guarantee" in c][0]]
    assert "4/255" in caption
    # ℓ2 attacks get a second row: the same two sizes per pixel value
    at.radio(key="attack_norm").set_value(L2).run()
    at.button(key="attack_run").click().run()
    ok(at)
    fig = figures(at)["attack_scale"]
    assert fig["data"][0]["y"] == ["size in ℓ2", "per pixel value (/255)"]


def test_attack_defaults_follow_the_study_and_the_takeaway_is_computed_from_the_numbers():
    from ui import story
    assert S.PRESET["attack_cell"][0] == 16 and S.PRESET["attack_samples"][0] == 32
    at = attack_page()
    at.button(key="attack_run").click().run()
    ok(at)
    line = next(m for m in markdowns(at) if m.startswith("What this shows"))
    table = at.dataframe[0].value
    for floor, attacked in zip(table["floor"], table["attacked"]):
        assert f"{attacked:.0%}" in line and f"{floor:.0%}" in line
    # the same rows give the same sentence from the library function
    rows = [{"method": m, "no_attack_floor": f, "attacked_topk_intersection": a, "label_preserved": bool(k)}
            for m, f, a, k in zip(table["method"], table["floor"], table["attacked"], table["label kept"])]
    assert story.attack_takeaway(rows) == line
    # and it changes when the numbers do (never a fixed sentence)
    flipped = [{**r, "attacked_topk_intersection": r["no_attack_floor"]} for r in rows]
    assert story.attack_takeaway(flipped) != line


def test_explain_shows_every_smoothing_method_side_by_side_on_one_scale():
    at = new_app()
    at.switch_page("pages/1_Explain.py").run()
    at.select_slider(key="explain_samples").set_value(4).run()
    at.toggle(key="explain_all").set_value(True).run()
    ok(at)
    figs = figures(at)
    panels = [figs[f"explain_all_{i}"] for i in range(4)]
    titles = [p["layout"]["title"]["text"] for p in panels]
    assert titles[0].startswith("Raw") and titles[1:] == ["SmoothGrad", "Sparsified", "RRS"]
    for p in panels:
        heat = next(t for t in p["data"] if t["type"] == "heatmap")
        assert heat["zmin"] == 0 and heat["zmax"] == 1
    panel = r"^(one gradient, no noise|T = 4 noisy copies); orange = top \d+ cells\.$"
    assert sum(bool(re.match(panel, c)) for c in captions(at)) == 4
    assert any("predicted" in c for c in captions(at))


def test_learn_is_a_narrative_whose_sentences_come_from_its_figures_and_has_a_presenter_layout():
    at = new_app()
    at.switch_page("pages/5_Learn.py").run()
    at.button(key="learn_run2").click().run()
    ok(at)
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    r = C.compute_map(model, x, MapSettings(method="vanilla", cell=16, k=0.1, samples=16, sigma=0.15, seed=0))
    sentence = next(m for m in markdowns(at) if "outlined patches" in m)
    assert f"**{r.k} outlined patches** (of {r.n})" in sentence and r.label in sentence
    at.toggle(key="learn_presenter").set_value(True).run()
    ok(at)
    assert [h.value for h in at.subheader] == ["1. The model looks at a picture"]
    assert any("font-size" in m for m in markdowns(at))                # large type
    at.button(key="learn_next").click().run()
    ok(at)
    assert [h.value for h in at.subheader] == ["2. Where did it look?"]
    assert charts(at) == 1                                              # its figure, already computed


def test_long_actions_show_their_predicted_time_from_the_measured_rate():
    at = attack_page()
    ok(at)
    note = next(i.value for i in at.info if "Run attack" in i.value)
    assert re.search(r"predicted (under a second|about \d+ (s|min))", note)
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    assert RATES.rate(sample_key(model, x, MapSettings(method="rrs", samples=8))) is not None
    at.switch_page("pages/4_Compare.py").run()
    assert any("predicted" in i.value for i in at.info if "Run comparison" in i.value)
    at.switch_page("pages/5_Learn.py").run()
    # every step that computes: its predicted time, or "ready" when the server's cache holds it
    assert sum("predicted" in c or c.startswith("ready: computed earlier") for c in captions(at)) >= 4


def test_learn_step7_shows_the_contrast_and_says_it_from_the_numbers():
    """Step 7: the plain map and the certified RRS map attacked with the same change — the
    radius step 6 showed, on the patches step 6 certified there (they disagreed: step 6 said
    0.0703, step 7 attacked at 0.0845 from a certificate of its own) — side by side; the
    finding's numbers are the panels'; the certified map keeps at least its provable patches.
    The contrast is recomputed here from the library and step 6's own story."""
    from rrs.settings import CertifySettings
    from rrs.workflows.advice import radius_text
    from ui import learn as L
    from ui.story import certificate_story, contrast_story, kept_words

    at = new_app()
    at.switch_page("pages/5_Learn.py").run()
    at.button(key="learn_run6").click().run()
    ok(at)
    six = figures(at)["learn_fig6"]["layout"]["title"]["text"]
    at.button(key="learn_run7").click().run()
    ok(at)
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    mr = C.compute_map(model, x, MapSettings(method="rrs", cell=8, k=0.1, samples=512, sigma=0.25, seed=0))
    told = certificate_story(C.map_certificates(mr, CertifySettings(norm="l2", eta=0.05, betas=C.CERTIFY_BETAS)))
    assert told["finite"] and f"size {told['radius']:.3g}:" in six and f"{told['certified']} of" in six
    claimed = np.flatnonzero(told["categories"].ravel() == 2)
    res = C.contrast_at(model, x, mr, told["radius"], tuple(claimed), "l2")
    assert res.radius == told["radius"] and res.provable == told["certified"]
    raw, sm = res.raw, res.smoothed
    assert raw.settings.method == "vanilla" and sm.settings.method == "rrs" and raw.epsilon == sm.epsilon
    assert not set(res.claimed) & set(sm.fallen) and sm.k - sm.lost >= res.provable >= 1
    figs = figures(at)
    assert {"learn_fig7_raw", "learn_fig7_rrs"} <= set(figs)
    text = next(m for m in markdowns(at) if "lightbulb" in m and "smoothed map" in m)
    dim = 3 * raw.attacked_image.shape[-1] ** 2
    assert contrast_story(res, dim) in text
    assert radius_text(res.radius, res.norm, dim) in text and f"**{res.provable}**" in text
    assert kept_words(raw, "patches") in captions(at) and kept_words(sm, "patches") in captions(at)
    assert L.STEPS == 7 and "Seven short steps" in " ".join(markdowns(at) + captions(at) + [i.value for i in at.info])
    # another student's session gets it from the server's cache, not a minute of attacks again
    from ui import caching

    before = dict(caching.COMPUTED)
    other = new_app()
    other.switch_page("pages/5_Learn.py").run()
    ready = [c for c in captions(other) if c.startswith("ready: computed earlier")]
    assert len(ready) >= 2, captions(other)                  # steps 6 and 7 say so instead of a prediction
    other.button(key="learn_run7").click().run()
    ok(other)
    assert {"learn_fig7_raw", "learn_fig7_rrs"} <= set(figures(other)) and dict(caching.COMPUTED) == before


def test_attack_page_places_the_budget_among_the_break_radii_and_the_certified_radius():
    """The Attack page's scale: each method's break radius and the certified radius on the
    budget's scale; the sentence says above/below from the profile's numbers, and moving the
    budget slider re-places it without recomputing."""
    from rrs.methods import METHODS

    at = attack_page()
    at.button(key="attack_radii").click().run()
    ok(at)
    (profile,) = at.session_state["attack.profile"].values()
    assert [m.method for m in profile.methods] == ["vanilla", "rrs"]

    def check(eps):
        said = next(m for m in markdowns(at) if m.startswith(":material/straighten: This budget"))
        head = said.split(", is ", 1)[1]
        above = head.split("below")[0] if head.startswith("above") else ""
        for m in profile.methods:
            r = m.break_radius if m.broken else m.held_radius
            name = METHODS[m.method].short
            assert f"{r * 255:.3g}/255" in said
            assert (name in above) == (r <= eps if m.broken else r < eps)
        rrs = profile.method("rrs")
        cert = rrs.certified_radius or rrs.certified_cell_radius
        if cert:
            assert f"certified radius {cert * 255:.3g}/255" in said
            assert ("certified radius" in above) == (cert <= eps)
        spec = figures(at)["attack_break_scale"]
        assert f"your budget {eps * 255:.3g}" in json.dumps(spec)

    check(4 / 255)
    at.slider(key="attack_budget_linf").set_value(1).run()
    ok(at)
    check(1 / 255)
    assert len(at.session_state["attack.profile"]) == 1          # the slider did not recompute


def _learn_notes(image: str):
    """A new session on Learn with a gallery ``image``; its steps' notes (a predicted time, or
    "ready" when the server's cache holds the step's result), in step order."""
    at = new_app()
    at.button(key=f"home_use_{image}").click().run()
    at.switch_page("pages/5_Learn.py").run()
    ok(at)
    notes = [c for c in captions(at) if c.startswith(("predicted", "ready: computed earlier"))]
    from ui.learn import STEPS
    assert len(notes) == STEPS - 1, notes          # step 1 (the model's answer) is instant
    return at, notes


def test_learn_says_ready_for_a_guarantee_computed_at_the_devices_precision(monkeypatch):
    """A certificate and a contrast are keyed by their map's settings as it ran (here bf16),
    not as Learn asked (fp32): another session's step 6 said a predicted time (39 s on Lite0)
    for a result the cache held, and step 7 counted step 6's map and certificate again
    (predicted 65 s, took 30 s). An image no other test opens on Learn."""
    monkeypatch.setenv("RRS_PRECISION", "bf16")
    at, notes = _learn_notes("astronaut")
    assert not any(n.startswith("ready") for n in notes[-2:]), notes
    at.button(key="learn_run6").click().run()
    ok(at)
    _, notes = _learn_notes("astronaut")
    assert notes[-2].startswith("ready") and notes[-1].startswith("predicted"), notes   # step 7 still attacks
