"""Every sentence from its numbers (issue 19, item 5): each text a page shows beside a figure
says what the figure's numbers say. Driven headless with ``AppTest`` on the tiny CNN; each
test failed on the code before its fix."""
from __future__ import annotations

import re

import numpy as np

from test_app import metrics, new_app, ok
from test_app_story import array, captions, figures, markdowns


def test_attack_takeaway_names_every_method_by_its_drop_in_percentage_points():
    at = new_app()
    at.switch_page("pages/3_Attack.py").run()
    at.multiselect(key="attack_methods").set_value(["vanilla", "smoothgrad", "rrs"]).run()
    at.slider(key="attack_steps").set_value(2).run()
    at.slider(key="attack_eot").set_value(1).run()
    at.select_slider(key="attack_samples").set_value(4).run()
    at.select_slider(key="attack_cell").set_value(4).run()
    at.button(key="attack_run").click().run()
    ok(at)
    line = next(m for m in markdowns(at) if m.startswith("What this shows"))
    table = at.dataframe[0].value
    assert len(table) == 3
    for method, floor, attacked in zip(table["method"], table["floor"], table["attacked"]):
        assert method in line, (method, line)                         # every method, none left out
        points = round(floor * 100) - round(attacked * 100)
        said = re.search(re.escape(method) + r" kept (\d+)% of its top cells against a no-attack floor of (\d+)% "
                         r"\((no drop|a drop of (\d+) percentage points?|(\d+) percentage points? above its floor)", line)
        assert said, (method, line)
        shown = 0 if said.group(3) == "no drop" else int(said.group(4) or 0) or -int(said.group(5))
        assert shown == int(said.group(2)) - int(said.group(1)) and abs(shown - points) <= 1
    assert not re.search(r"drop of \d+%", line)                        # points, not percent
    # the method that dropped the most is named as such
    drops = {m: f - a for m, f, a in zip(table["method"], table["floor"], table["attacked"])}
    if max(drops.values()) - min(drops.values()) >= 0.05:
        verdict = line.rsplit(" — ", 1)[-1]
        most = verdict.split(" dropped the most")[0]
        pts = {m: int(f"{f * 100:.0f}") - int(f"{a * 100:.0f}")
               for m, f, a in zip(table["method"], table["floor"], table["attacked"])}
        assert all((m in most) == (p == max(pts.values())) for m, p in pts.items()), (pts, verdict)


def _compare(**extra):
    at = new_app()
    at.switch_page("pages/4_Compare.py").run()
    at.multiselect(key="compare_methods").set_value(["vanilla", "rrs"]).run()
    at.multiselect(key="compare_ts").set_value([1, 2, 4]).run()
    at.slider(key="compare_steps").set_value(1).run()
    at.slider(key="compare_eot").set_value(1).run()
    at.select_slider(key="compare_cell").set_value(4).run()
    for key, value in extra.items():
        at.number_input(key=key).set_value(value).run()
    at.button(key="compare_run").click().run()
    return ok(at)


def test_compare_floor_caption_is_true_of_the_chart_beside_it():
    at = _compare()
    fig = figures(at)["compare_attack"]
    caption = next(c for c in captions(at) if c.startswith("Higher = the map keeps"))
    assert "can only be as high as its floor" not in caption
    assert "what an attack that does nothing would score" in caption
    lines = {t["name"]: t for t in fig["data"]}
    above = []
    for name, attacked in lines.items():
        if name.endswith("under attack"):
            floor = lines[name.replace("under attack", "no-attack floor")]
            above += [(name, t) for t, a, f in zip(attacked["x"], attacked["y"], floor["y"]) if a > f + 1e-9]
    if above:
        assert "above its floor" in caption, caption
        for name, t in above:
            short = name.replace(" — under attack", "")
            assert re.search(rf"{re.escape(short)} at T = (\d+, )*(\d+ and )?[\d ,and]*\b{t}\b", caption), (name, t, caption)
    else:
        assert "every attacked line is at or below its floor" in caption


def test_compare_plugin_caption_says_which_way_each_estimate_moves():
    at = _compare()
    fig = figures(at)["compare_plugin"]
    caption = next(c for c in captions(at) if c.startswith("The plug-in value"))
    for trace in fig["data"]:
        name = re.escape(trace["name"].replace(", plug-in", ""))
        drawn = [(t, float(v)) for t, v in zip(trace["x"], trace["y"]) if v is not None and np.isfinite(float(v))]
        unbounded = [t for t, v in zip(trace["x"], trace["y"]) if v is None or not np.isfinite(float(v))]
        if unbounded:        # ∞ is not drawn, and the caption says so rather than "falls from ∞"
            assert re.search(rf"the {name} estimate is unbounded \(∞, not drawn\) at", caption), caption
        if len(drawn) < 2:
            continue
        (x0, y0), (x1, y1) = drawn[0], drawn[-1]
        word = "rises" if y1 > y0 else "falls" if y1 < y0 else "stays at"
        assert re.search(rf"the {name} estimate (is unbounded [^;]*, then )?{word}", caption), (trace["name"], caption)
        assert f"T = {x0}" in caption and f"T = {x1}" in caption
    assert "from ∞" not in caption
    assert "falls as more samples reveal the real noise" not in caption   # not a fixed claim any more


def test_learn_step6_says_top_k_not_stays_important_names_the_cell_change_and_the_per_value_radius():
    at = new_app()
    at.switch_page("pages/5_Learn.py").run()
    at.button(key="learn_run6").click().run()
    ok(at)
    text = next(m for m in markdowns(at) if "lightbulb" in m and "patches" in m)
    caption = next(c for c in captions(at) if c.startswith("Blue") or c.startswith("Orange"))
    assert "guaranteed to stay important" not in text                  # Certify's other certificate
    if "nothing can be guaranteed" not in text and "no patch" not in text:
        assert "stay in the top" in text
        radius = float(re.search(r"size \*\*([\d.e+-]+)\*\*", text).group(1))
        per_value = re.search(r"≈ ([\d.e+-]+)/255 per pixel value", text)
        assert per_value, text
        dim = 3 * 32 * 32                                               # the tiny model's working size
        assert float(per_value.group(1)) == float(f"{radius / dim ** 0.5 * 255:.2g}")
        assert "/255 per pixel value" in caption
    step2_cell, step6 = 16, next(c for c in captions(at) if "noisy copies," in c)
    cell = int(re.search(r"(\d+)×\d+-px patches", step6).group(1))
    if cell != step2_cell:                                              # a cell change is said, never silent
        assert f"steps 2–5: {step2_cell}×{step2_cell}" in step6
        intro = next(m for m in markdowns(at) if "differential privacy" in m)
        assert f"{cell}×{cell} pixels here" in intro and f"{step2_cell}×{step2_cell}" in intro


def test_explain_side_by_side_says_how_many_maps_came_from_the_cache():
    at = new_app()
    at.switch_page("pages/1_Explain.py").run()
    at.select_slider(key="explain_samples").set_value(4).run()
    at.number_input(key="explain_seed").set_value(4242).run()          # maps no other test computed
    assert metrics(at)["Raw agreement"]                                 # the RRS map is now in the cache
    at.toggle(key="explain_all").set_value(True).run()
    ok(at)
    line = next(c for c in captions(at) if "maps" in c and ("cache" in c or "computed now" in c)
                and "seed 4242" in c)
    assert "1 of 3 maps from cache; the other 2 computed now in" in line, line
    at.toggle(key="explain_all").set_value(False).run()
    at.toggle(key="explain_all").set_value(True).run()
    ok(at)
    line = next(c for c in captions(at) if "seed 4242" in c and "maps" in c)
    assert "all 3 maps from cache" in line, line


def _outlined(fig: dict) -> set[tuple[int, int]]:
    """The cells a region figure outlines: the heatmap's non-empty cells, (row, col) from 0."""
    z = np.asarray(array(next(t for t in fig["data"] if t["type"] == "heatmap")["z"]), dtype=float)
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(np.isfinite(z)))}        # NaN: not drawn


def test_certify_says_which_cells_the_plugin_and_guaranteed_panels_outline_differently_and_why():
    """Chelsea, 4-px cells, T = 1024 with a selection batch: the top-k of the first 128 samples
    (the set the guarantee is about) and of all 1,024 (the plug-in panel) differ by one cell;
    the sentence under the panels names exactly the cells that differ, on which side, and why."""
    from test_app_certify import certify_page, run

    at = run(certify_page(sb_sample="chelsea"), samples=1024, cell=4)
    figs = figures(at)
    plug, fin = _outlined(figs["certify_region_plug"]), _outlined(figs["certify_region_fin"])
    assert plug != fin and len(plug) == len(fin)          # the case this test is about
    said = next((m for m in markdowns(at) if "The two panels outline different cells" in m), None)
    assert said is not None, [m for m in markdowns(at) if "panel" in m]

    def named(clause: str) -> set[tuple[int, int]]:
        return {(int(r), int(c)) for r, c in re.findall(r"row (\d+), col (\d+)", clause)}

    only_plug = said.split(" is in the plug-in top")[0] if " is in the plug-in top" in said else \
        said.split(" are in the plug-in top")[0]
    only_fin = said.split("only; ", 1)[1].split(" in the guaranteed set only")[0]
    assert named(only_plug) == plug - fin, (said, plug - fin)
    assert named(only_fin) == fin - plug, (said, fin - plug)
    assert "all 1,024 samples" in said and "first 128 samples" in said and "selection batch" in said
    # the sentence is there exactly when the panels differ
    at = run(certify_page(sb_sample="coffee"), samples=64, cell=8)
    differ = _outlined(figures(at)["certify_region_plug"]) != _outlined(figures(at)["certify_region_fin"])
    assert any("panels outline different cells" in m for m in markdowns(at)) == differ


def test_an_attacked_smoothed_map_with_nothing_pushed_out_never_claims_all_cells_kept_beside_an_overlap_below_1():
    """Certify's "Try to break it" said "kept all 5 of its top cells" beside "Top-k overlap 0.90"
    (k = 5): a smoothed map's cell counts as pushed out only when the clean map under the same
    noise keeps it, so ties and noise lower the overlap with nothing pushed out."""
    from types import SimpleNamespace

    from ui.story import kept_words

    def panel(smoothed, lost, overlap, floor=0.9, k=5):
        return SimpleNamespace(settings=SimpleNamespace(smoothed=smoothed), k=k, lost=lost, fallen=tuple(range(lost)),
                               overlap=overlap, floor=floor)
    said = kept_words(panel(True, 0, 0.9))
    assert "kept all" not in said and "none of its 5 top cells" in said and "0.90" in said
    assert kept_words(panel(True, 0, 1.0)) == "kept all 5 of its top cells"
    assert kept_words(panel(False, 0, 1.0), "patches") == "kept all 5 of its top patches"
    assert kept_words(panel(True, 2, 0.6)) == "lost 2 of its 5 top cells"
    assert kept_words(panel(False, 5, 0.0)) == "lost all 5 of its top cells"


def test_compare_guarantee_caption_reads_its_series():
    """"It starts at 0 and grows with T (try T = 64 or 128)" was a fixed sentence, also beside a
    chart with T up to 128 and beside one that was 0 everywhere."""
    from ui.story import guarantee_caption

    zero = [{"x": [1, 2, 4, 8], "y": [0, 0, 0, 0]}, {"x": [1, 2, 4, 8], "y": [0, 0, 0, 0]}]
    said = guarantee_caption(zero)
    assert "0 at every T here, up to T = 8" in said and "64 or 128" in said
    assert "64 or 128" not in guarantee_caption([{"x": [16, 64, 128], "y": [0, 0, 0]}])
    grows = [{"x": [16, 64, 128], "y": [0, 0.01, 0.03]}, {"x": [16, 64, 128], "y": [0, 0.02, 0.025]}]
    assert "0 below T = 64 and at most 0.03 up to T = 128" in guarantee_caption(grows)
