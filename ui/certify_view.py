"""The Certify page's sections (streamlit): the live run, the stored result, the radius slider,
the verdict and suggestions, the numbers, the figures, "try to break it" and the exports.

Each function takes what it shows as arguments (the page context ``ctx``, the
:class:`~rrs.workflows.certify.AnytimeView`, the page's choices) and reads no module globals;
the computations are in :mod:`rrs.workflows` and the plain app layer :mod:`ui.certify`.
"""
from __future__ import annotations

import math
from contextlib import closing

import numpy as np
import streamlit as st

from rrs.compute import Cancelled
from rrs.timing import format_seconds
from rrs.workflows import advice as WA

from . import caching, export, jobs, predict, runs, state, story
from . import plots as P
from . import certify as CU
from . import widgets as W

__all__ = ["record_for", "run_live", "stored_result", "status_line", "radius_slider", "verdict_box",
           "suggestion_buttons", "numbers", "figures", "break_section", "export_section"]


#: Height of the live maps: with the Stop button and the metrics above them they fit under the
#: page's title at 1440×900.
LIVE_H = 290


def record_for(key):
    """The run of these settings: this session's (possibly stopped) run, else a completed one
    from the server's cache; ``(sampled, from_cache)``."""
    runs = st.session_state.setdefault("certify.runs", {})
    if key in runs:
        return runs[key], False
    stored = caching.certify_store().get(key)
    return (stored, True) if stored is not None else (None, False)


def _live_panel(ctx, holder, sampled, view) -> None:
    """What is redrawn after every checkpoint (no widgets: they cannot be re-created in a loop)."""
    j = len(sampled.checkpoints)
    nxt = sampled.next_seconds()
    cell_px = CU.pixel_cell(sampled)
    with holder.container():
        st.markdown(f"**Checkpoint {j} of {len(sampled.plan.checkpoints)}** — T = {sampled.samples_done:,} "
                    f"samples; every certificate below is valid now.")
        m = st.columns(3)
        fin = view.guaranteed(1.0)
        certified = int((view.cell_radii("best", True) > 0).sum())
        W.metric(m[0], f"Guaranteed {view.norm.label} radius", f"{fin:.3g}", f"cells on their own: {certified}",
                 help="The whole top-k stays (β = 100%) for every change up to this size; each cell counted "
                      "below has its own, possibly larger radius.")
        W.metric(m[1], "Samples done", f"{sampled.samples_done:,}", f"of {sampled.plan.total:,}")
        W.metric(m[2], "Sampling rate", f"{sampled.rate:.1f}/s",
                 "last checkpoint" if nxt is None else f"next in {format_seconds(nxt)}")
        left, right = st.columns(2, gap="medium")
        with left:
            W.figure(P.map_figure(ctx.picture, sampled.map(), cell_px, 0.6, title="RRS map so far", height=LIVE_H),
                     f"certify_live_map_{j}", "Bright = the cells RRS ranks highest over the noise draws so far.")
        with right:
            W.figure(P.region_figure(ctx.picture, view.categories(0.0, "best", True), cell_px, 0.55,
                                     title="Certified cells so far", height=LIVE_H), f"certify_live_region_{j}",
                     "Blue = guaranteed (finite-sample) to stay in the top-k, each up to its own radius; "
                     "the region grows as samples arrive.")


def run_live(ctx, key, settings, cert, plan, place=None) -> None:
    """Sample in doubling checkpoints, certify each, redraw; keep every checkpoint reached.
    ``place``: a container near the top of the page (the page's controls are below it), so the
    Stop button and the live maps are in view at 1440×900 while they grow."""
    place = st.container() if place is None else place
    with place:
        W.scroll_here("certify")        # at 1024×768 the button is below the fold, the panel above it
    stop = place.empty()
    stop.button("Stop (keep the result so far)", key="certify_stop", icon=":material/stop:")
    bar = W.Progress(f"Drawing {plan.total:,} noise samples in {len(plan.checkpoints)} checkpoints", place)
    holder = place.empty()
    runs = st.session_state.setdefault("certify.runs", {})
    try:
        with closing(jobs.anytime(ctx.model, ctx.x, settings, cert, progress=bar)) as stream:
            for sampled in stream:
                runs[key] = sampled
                if sampled.flat:
                    break
                view = caching.anytime_view(key, sampled, cert)
                predict.record_anytime_certificates(ctx.x, settings, cert.scheme, len(sampled.checkpoints), view.elapsed)
                _live_panel(ctx, holder, sampled, view)
    except Cancelled:
        st.info("This computation was cancelled.", icon=":material/cancel:")
    except ValueError as e:
        st.error(str(e), icon=":material/error:")
        st.stop()
    except MemoryError:
        st.error("This request needs more memory than the machine has; lower T or the resolution.",
                 icon=":material/memory:")
        st.stop()
    finally:
        bar.clear()
        stop.empty()
    if key in runs and runs[key].complete:
        caching.keep_run(key, runs[key])
    st.rerun()


def stored_result(run_key, samples: int, predicted):
    """``(sampled, from_cache, view_key)``: the run of the page's settings, else the session's
    last result (said so), else a hint and stop; stops on a flat map."""
    sampled, from_cache = record_for(run_key)
    if sampled is None:
        st.info(f"Press **Certify** to draw {int(samples):,} noise samples ({format_seconds(predicted)} here). The "
                "certificates update at every checkpoint; **Stop** or any change keeps the last valid one.",
                icon=":material/info:")
        last = st.session_state.get("certify.last")
        if last is None:
            st.stop()
        view_key, (sampled, from_cache) = last[0], (last[1], False)
        st.caption(f"Below: your last result, for its own settings ({sampled.settings.describe()}, "
                   f"{CU.SCHEME_TEXT[sampled.scheme][0].lower()}).")
    else:
        view_key = run_key
        st.session_state["certify.last"] = (run_key, sampled)
    if sampled.flat:
        st.warning("All cells of this map are equal: the attribution is flat for this image and model, so there is "
                   "no top-k to certify. Try another image, base attribution or a smaller σ.", icon=":material/block:")
        st.stop()
    return sampled, from_cache, view_key


def status_line(sampled, eta: float, from_cache: bool) -> None:
    kind, text = CU.status(sampled, eta, from_cache)
    if kind == "warning":
        st.warning(text, icon=":material/pause_circle:")
    elif kind == "info":
        st.info(text, icon=":material/cached:")
    else:
        st.caption(text)


def radius_slider(col, view, kind: str, beta: float, run_key) -> float:
    """The radius L to draw (pixel units), starting just below this result's guaranteed radius."""
    smax, sdefault = CU.slider_range(view, kind, beta)
    norm, s = view.norm, view.sampled
    token = CU.widget_token(run_key, s.samples_done, float(view.eta), norm.key, kind)
    shown = col.slider("Radius L to draw" + (" (in 1/255 steps)" if norm.is_inf else " (pixel units)"),
                       min_value=smax / 200, max_value=smax, value=sdefault, step=smax / 200, format="%.3g",
                       key=f"certify_radius_{token}",
                       help="The regions show the cells guaranteed to stay for every change of at most this size. "
                            "It starts at the guaranteed radius of this result.")
    radius = shown / CU.radius_scale(view)
    col.caption(WA.radius_text(radius, norm, view.dim))
    return radius


def verdict_box(view, beta: float, place=None):
    """The verdict in words (:func:`rrs.workflows.advice.verdict`), in ``place`` (the page puts it
    under its title, where the live run was: in view at 1440×900 once a run completes)."""
    verdict = WA.verdict(view, float(beta))
    place = st if place is None else place
    box = {"ok": place.success, "tiny": place.warning, "vacuous": place.warning}[verdict.level]
    box(f"{verdict.whole}  \n{verdict.cells}", icon={"ok": ":material/verified:", "tiny": ":material/info:",
                                                     "vacuous": ":material/block:"}[verdict.level])
    return verdict


def suggestion_buttons(ctx, view, beta: float, settings, run_key, cap: int) -> None:
    """Only what is predicted to raise the certificate, each with its predicted time."""
    norm = view.norm
    pilots = st.session_state.get("certify.pilots", {}).get(run_key)
    found = WA.suggestions(view, float(beta), cap, W.cells_options(ctx.size), pilots)
    cands = WA.pilot_candidates(settings, W.cells_options(ctx.size))
    if not found and pilots is not None:
        st.caption("None of the changes checked (more samples, " + ", ".join(
            c.replace("Use ", "").replace("Try ", "") for c in cands) + ") is predicted to raise the certificate "
            "at these settings.")
    if found:
        cols = st.columns(len(found))
        for col, sg in zip(cols, found):
            now = WA.radius_text(sg.now_radius, norm, view.dim)
            pred = WA.radius_text(sg.radius, norm, view.dim)
            what = (f"predicted guaranteed radius {pred} (now {now})" if sg.radius > 0 or sg.now_radius > 0
                    else f"predicted {sg.cells} cells certified on their own (now {sg.now_cells})")
            secs = "instant" if sg.seconds == 0 else format_seconds(sg.seconds)
            if "beta" in sg.updates:
                col.button(f"{sg.label} · {secs}", key="certify_try_beta", width="stretch", help=what,
                           on_click=state.set_setting, args=("certify_beta", sg.updates["beta"]))
            else:
                col.button(f"{sg.label} · {secs}", key=f"certify_try_{'_'.join(sg.updates)}", width="stretch",
                           help=what, on_click=state.request_run, args=("certify", sg.updates))
            col.caption(what)
    if pilots is None and cands:
        pilot_secs = CU.predict_seconds(ctx.model, ctx.x, settings, 32 * len(cands))
        what = " or ".join(c.replace("Use ", "").replace("Try ", "") for c in cands)
        if st.button(f"Check whether {what} would help "
                     f"(pilot maps, {format_seconds(pilot_secs)})", key="certify_pilot",
                     icon=":material/science:"):
            res = W.with_progress("Pilot maps for the suggestions", jobs.pilots, ctx.model, ctx.x, settings,
                        W.cells_options(ctx.size))
            if res is not None:
                st.session_state.setdefault("certify.pilots", {})[run_key] = res
                st.rerun()


def _unit(view) -> str:
    return "1/255, ℓ∞" if view.norm.is_inf else view.norm.label


def numbers(view, beta: float, radius: float, kind: str) -> None:
    """The metrics: guaranteed radius, cells certified and staying important at L, per kind, samples."""
    sampled, eta, unit, scale = view.sampled, view.eta, _unit(view), CU.radius_scale(view)

    def shown(r: float) -> str:
        return "unbounded" if math.isinf(r) else f"{r * scale:.3g}"

    fin_best, plug_best = view.guaranteed(beta), view.plugin(beta)
    cert_fin = int((view.categories(radius, kind, True, beta) == 2).sum())
    cert_plug = int((view.categories(radius, kind, False) == 2).sum())
    imp_fin = int((view.important > radius).sum())
    m = st.columns(3)
    W.metric(m[0], f"Guaranteed ({unit})", shown(fin_best),
             f"plug-in {shown(plug_best)}" + (" at this T" if math.isinf(plug_best) else ""),
             help=f"Finite-sample whole-set certificate at β = {beta:.0%} (best of RDP and Gaussian-CDF, best over "
                  f"the checkpoints): holds with probability ≥ {1 - float(eta):.0%}. The plug-in value treats the "
                  "sampled map as exact (not a guarantee).")
    W.metric(m[1], "Cells certified at L", f"{cert_fin} of {sampled.k}", f"plug-in {cert_plug} of {sampled.k}",
             help="Top cells guaranteed (finite-sample) to stay in the top-k, each on its own, at the radius L drawn "
                  "below.")
    W.metric(m[2], "Stay important at L", f"{imp_fin} of {sampled.n}", f"τ = {view.tau:g}",
             help=f"Cells whose importance score ({story.importance_meaning(sampled.settings.scoring)}) provably "
                  "stays above τ for every change of at most L (finite-sample).")
    m = st.columns(3)
    W.metric(m[0], f"RDP exact ({unit})", shown(view.radius("rdp_finite", beta)),
             f"plug-in {shown(view.radius('rdp_plugin', beta))}",
             help="Rényi-DP certificate with the exact minimal divergence: finite-sample radius (plug-in below).")
    if view.report.cdf_cells_finite is not None:
        W.metric(m[1], f"Gaussian-CDF ({unit})", shown(view.radius("cdf_finite", beta)),
                 f"plug-in {shown(view.radius('cdf_plugin', beta))}",
                 help="Per-cell Gaussian-CDF certificate (Salman et al. 2019): finite-sample radius (plug-in below).")
    else:
        W.metric(m[1], "Gaussian-CDF", "n/a", "needs Gaussian noise")
    W.metric(m[2], "Samples", f"{sampled.samples_done:,}", f"{sampled.elapsed:.1f} s · {sampled.rate:.1f}/s",
             help=f"{CU.SCHEME_TEXT[sampled.scheme][0]}: {sampled.plan.selection:,} selection samples, then "
                  f"estimation checkpoints {', '.join(f'{c:,}' for c in sampled.plan.checkpoints)}.")
    if math.isinf(plug_best):
        st.caption("Plug-in radius unbounded at this T: in every sample the top cells were the same, so the "
                   "T-sample map cannot be moved at all (an estimate; the finite-sample value is the guarantee).")


def _radius_maps(ctx, view, grids, titles, keys, captions) -> None:
    """Two per-cell radius maps on one colour scale; unbounded (∞) cells drawn at the top."""
    scale, cell_px = CU.radius_scale(view), CU.pixel_cell(view.sampled)
    both = np.concatenate([g.ravel() for g in grids]) * scale
    finite = both[np.isfinite(both)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    cols = st.columns(2, gap="medium")
    for col, grid, title, key, cap in zip(cols, grids, titles, keys, captions):
        g = grid * scale
        n_inf = int(np.isinf(g).sum())
        with col:
            W.figure(P.radius_figure(ctx.picture, np.where(np.isinf(g), top, g), cell_px, 0.8, zmax=top,
                                     unit=_unit(view), title=title, estimate=key.endswith("_plug")), key,
                     cap + (f" {n_inf} cell(s) unbounded at this T (plug-in), drawn at the top of the scale."
                            if n_inf else ""))


def figures(ctx, view, radius: float, kind: str, beta: float, opacity: float) -> list[dict]:
    """Regions, per-cell radii, "stays important", radius versus β with its table, the growth
    with T. Returns the radius-versus-β series (for the export)."""
    eta, unit, cell_px = view.eta, _unit(view), CU.pixel_cell(view.sampled)
    L_text = WA.radius_text(radius, view.norm, view.dim)
    left, right = st.columns(2, gap="medium")
    with left:
        W.figure(P.region_figure(ctx.picture, view.categories(radius, kind, False), cell_px, opacity,
                                 title="Top-k region, plug-in (estimate)"),
                 "certify_region_plug", f"Blue cells stay in the top-k for any change of size at most {L_text}, "
                                        "if the sampled map were exact; orange = top-k but not certified.")
    with right:
        W.figure(P.region_figure(ctx.picture, view.categories(radius, kind, True, beta), cell_px, opacity,
                                 title=f"Top-k region, guaranteed ({1 - float(eta):.0%})"),
                 "certify_region_fin", f"Blue cells are guaranteed to stay in the top-k for any change of size at "
                                       f"most {L_text}; orange = top-k but not certified.")
    differ = story.region_difference(view, beta)
    if differ:          # the two panels outline different cells: say which and why
        st.markdown(f":material/compare_arrows: {differ}")
    _radius_maps(ctx, view, (view.radius_grid(kind, False), view.radius_grid(kind, True, beta)),
                 ("Per-cell radius, plug-in", "Per-cell radius, finite-sample"),
                 ("certify_radii_plug", "certify_radii_fin"),
                 ("Brighter = the cell stays in the top-k under larger changes (estimate); other cells not drawn.",
                  "Brighter = the cell is guaranteed to stay in the top-k under larger changes; same colour scale."))
    st.markdown("##### Stays important — a different question")
    st.caption(f"The top-k certificate above says *the top-k set of the smoothed map stays*. This one says *each of "
               f"these cells keeps an importance score above τ = {view.tau:g}* (the score is "
               f"{story.importance_meaning(view.sampled.settings.scoring)}), however the ranking among them changes — usually a much larger radius at small T "
               "(Anani et al. 2025; method.md §6b).")
    left, right = st.columns(2, gap="medium")
    with left:
        W.figure(P.region_figure(ctx.picture, view.important_region(radius, True), cell_px, opacity,
                                 title="Stays important, finite-sample"), "certify_important_region",
                 f"Blue = guaranteed to stay important (score > τ) for any change of at most {L_text}; orange = "
                 "important now but not guaranteed at L.")
    with right:
        g = view.important_grid(True) * CU.radius_scale(view)
        W.figure(P.radius_figure(ctx.picture, g, cell_px, 0.8, unit=unit, title="Stays important: per-cell radius"),
                 "certify_important_radii", "Brighter = the cell stays important under larger changes "
                                            "(finite-sample); cells with no guarantee not drawn.")
    series = CU.curves(view)
    left, right = st.columns([1.6, 1], gap="medium")
    with left:
        W.figure(P.beta_curve_figure(series, title="Certified radius versus β", unit=unit), "certify_beta_curve",
                 "Higher = stronger guarantee; smaller β (fewer top cells must stay) allows larger changes. Solid "
                 "circles = plug-in estimate, dotted diamonds = finite-sample guarantee; thin grey dashes = "
                 "equal-level form, for comparison only (not a certificate for β<1).")
    with right:
        st.table(CU.table_rows(view, series, beta))
        st.caption(f"Radii in {unit}. η = {float(eta):g}; k = {view.sampled.k} of {view.sampled.n} cells; "
                   f"dimension N = {view.dim:,} input values; scheme: "
                   f"{CU.SCHEME_TEXT[view.sampled.scheme][0].lower()}.")
    hist = view.history
    if len(hist) > 1:
        W.figure(P.lines_figure([{"name": "cells certified on their own", "x": [h["total"] for h in hist],
                                  "y": [h["cells_certified"] for h in hist], "color": P.CERTIFIED},
                                 {"name": "cells that stay important", "x": [h["total"] for h in hist],
                                  "y": [h["stays_important"] for h in hist], "color": P.TOPK, "dash": "dot"}],
                                "samples T (checkpoints)", "cells", title="The certificate growing with T", height=300),
                 "certify_history", "Each point is a checkpoint; its certificates used η·2^−(j+1) of the failure "
                                    "probability, so all of them hold at once.")
    return series


def _mask(cells, grid) -> np.ndarray:
    m = np.zeros(int(grid[0]) * int(grid[1]), dtype=bool)
    m[list(cells)] = True
    return m.reshape(grid)


def _contrast_panels(ctx, view, res, opacity: float) -> None:
    """One column per map, the raw map left and the certified map right: clean map, attacked map
    (top cells that fell grey dotted), attacked image. On a narrow screen the columns stack."""
    from .compute import working_image

    grid, cell_px = view.sampled.grid, CU.pixel_cell(view.sampled)
    base = W.method_label(res.raw.settings.method).lower()
    cols = st.columns(2, gap="medium")
    for col, p, name, key in zip(cols, (res.raw, res.smoothed), (f"Raw {base}", f"Certified RRS of the {base}"),
                                 ("raw", "rrs")):
        z = P.display_scale(np.asarray(p.clean_map), np.asarray(p.attacked_map))
        top, fell = _mask(p.top_cells, grid), _mask(p.fallen, grid)
        short = "raw" if key == "raw" else "RRS"
        lost = story.kept_words(p)
        with col:
            st.markdown(f"**{name}**: {lost}" + ("" if p.label_kept else " (the label changed)"))
            W.figure(P.map_figure(ctx.picture, np.asarray(p.clean_map).reshape(grid), cell_px, opacity, zmax=z,
                                  topk_mask=top, title=f"Clean map, {short}", colorbar=False),
                     f"certify_contrast_clean_{key}", f"Orange = its top {p.k} cells; brighter = more important "
                                                      "(one colour scale for the clean and attacked map).")
            W.figure(P.map_figure(working_image(p.attacked_image), np.asarray(p.attacked_map).reshape(grid), cell_px,
                                  opacity, zmax=z, topk_mask=top & ~fell, lost_mask=fell,
                                  title=f"Attacked map, {short}", colorbar=False),
                     f"certify_contrast_attacked_{key}",
                     f"Orange = top cells still in the top {p.k}; grey dotted = top cells the attack pushed out ({p.lost}). "
                     f"Top-k overlap {p.overlap:.2f} (no-attack floor {p.floor:.2f}).")
            st.image(working_image(p.attacked_image), width=300,
                     caption=f"The attacked image ({name[0].lower() + name[1:]} map): a change of "
                             f"{WA.radius_text(p.epsilon, view.norm, view.dim)}, invisible to the eye.")


def _radii_chart(view, res, profile) -> None:
    """Each map's break radius on one axis, the certified radius marked."""
    scale, norm = CU.radius_scale(view), view.norm
    rows = []
    for m, color in zip(profile.methods, (P.LOST, P.CERTIFIED)):
        r = m.break_radius if m.broken else m.held_radius
        name = "RRS (certified)" if m.settings.smoothed else f"raw {W.method_label(m.settings.method).lower()}"
        rows.append({"name": name, "broken": m.broken, "radius": r * scale, "color": color})
    unit = "budget (ℓ∞, in 1/255)" if norm.is_inf else f"budget ({norm.label}, pixel units)"
    per = "" if norm.is_inf else (f" An {norm.label} change of {res.radius:.3g} is about "
                                  f"{norm.per_pixel(res.radius, view.dim) * 255:.2g}/255 per pixel value if spread "
                                  "evenly.")
    W.figure(P.break_radius_figure(rows, res.radius * scale, unit, title="Where each map breaks"),
             "certify_break_radii",
             "× = the smallest change the attack found that pushes a top cell out (label kept); ▶ = not broken "
             f"up to the largest change tried. Dashed line = the certified radius ({res.source}).{per}")


def break_section(ctx, view, beta: float, kind: str, view_key, settings) -> None:
    """"Try to break it": the raw base map and the certified map attacked at the certified
    radius side by side, one sentence from the numbers, then each map's break radius."""
    st.markdown("##### Try to break it: the raw map next to the certified map")
    norm = view.norm
    base = view.sampled.settings.base
    plan_src, plan_r, plan_cells = WA.break_plan(view, float(beta), kind)
    if norm.p not in (2.0, math.inf):
        st.caption("The attack supports ℓ2 and ℓ∞ budgets; switch the threat norm to ℓ2 or ℓ∞ to try it.")
        return
    if plan_r <= 0:
        st.caption("Nothing is certified yet, not even as a plug-in estimate: there is no radius to attack.")
        return
    raw_s, smooth_s, rs = WA.contrast_settings(view, base)
    attack_secs = predict.predict_robustness(ctx.model, ctx.x, (raw_s, smooth_s), rs, references=(smooth_s.method,))
    st.caption(f"The same top-k attack ({norm.label}) on the raw {W.method_label(base).lower()} map and on the "
               f"certified RRS map, at exactly the certified radius {WA.radius_text(plan_r, norm, view.dim)} "
               f"({plan_src}; {len(plan_cells)} cell(s) guaranteed to stay).")
    store = st.session_state.setdefault("certify.break", {})
    bkey = (view_key, view.sampled.samples_done, norm.key, kind, float(beta), float(view.eta), base)
    if st.button(f"Attack both maps at the certified radius ({format_seconds(attack_secs)})", key="certify_break",
                 icon=":material/bolt:"):
        res = W.with_progress("Attacking the raw map and the certified map at the certified radius", jobs.contrast,
                              ctx.model, ctx.x, view, base, float(beta), kind)
        if res is not None:
            store[bkey] = res
            predict.record_robustness(ctx.model, ctx.x, 1, predict.predict_robustness(
                ctx.model, ctx.x, (raw_s, smooth_s), rs, prior=True, references=(smooth_s.method,)), res.elapsed)
    if bkey not in store:
        return
    res = store[bkey]
    rkey = ("radii",) + bkey
    profile = store.get(rkey)
    st.info(res.sentence(profile), icon=":material/balance:")
    _contrast_panels(ctx, view, res, 0.6)
    st.caption(f"The RRS map is attacked with {rs.sweep_samples} "
               f"samples per look (seed s+1) and judged against its no-attack floor; {res.elapsed:.1f} s.")
    secs = predict.predict_robustness(ctx.model, ctx.x, (raw_s, smooth_s), rs, budgets=len(rs.grid) + rs.bisection)
    if profile is None:
        if st.button(f"Find each map's break radius ({format_seconds(secs)})", key="certify_radii",
                     icon=":material/straighten:",
                     help="Attacks both maps at a sweep of budgets (each starting from the previous one's "
                          "result) and narrows down the smallest one that pushes a top cell out."):
            prof = W.with_progress("Finding each map's break radius", jobs.break_radii, ctx.model, ctx.x, view, base)
            if prof is not None:
                store[rkey] = prof
                n = len(rs.grid) + rs.bisection
                predict.record_robustness(ctx.model, ctx.x, n, predict.predict_robustness(
                    ctx.model, ctx.x, (raw_s, smooth_s), rs, budgets=n, prior=True), prof.elapsed)
                st.rerun()
        return
    _radii_chart(view, res, profile)


def export_section(ctx, view, verdict, series, radius: float, kind: str, beta: float, opacity: float,
                   from_cache: bool) -> None:
    """Provenance and the PNG, radius-versus-β PNG, CSV and JSON exports."""
    sampled, eta, unit, scale = view.sampled, float(view.eta), _unit(view), CU.radius_scale(view)
    used, norm = sampled.settings, view.norm
    scheme_label = CU.SCHEME_TEXT[sampled.scheme][0].lower()
    runs.provenance_seconds(ctx, sampled.elapsed + view.elapsed, sampled.device, used.seed,
                 f"{used.describe()}, {scheme_label}, η = {eta:g}, norm {norm.label}"
                 + (" (from the cache)" if from_cache else ""))
    L_text = WA.radius_text(radius, norm, view.dim)
    footer = (f"{used.describe()} · {sampled.scheme} scheme · η={eta:g} · {norm.label} · L={L_text} · "
              f"image {ctx.image_name} ({ctx.image_digest})")
    grid_fin = view.radius_grid(kind, True, beta) * scale
    panels = [{"title": "top-k region, plug-in", "categories": view.categories(radius, kind, False)},
              {"title": f"top-k region, finite-sample (1-η={1 - eta:g})",
               "categories": view.categories(radius, kind, True, beta)},
              {"title": "stays important, finite-sample", "categories": view.important_region(radius, True)},
              {"title": f"per-cell radius, finite-sample ({unit})",
               "radii": np.where(np.isinf(grid_fin), np.nan, grid_fin)}]
    curve_series = [{"name": c["name"], "x": c["beta"], "y": c["radius"], "dash": c["dash"], "color": c["color"],
                     "marker": c["marker"]} for c in series]
    header = CU.export_header(view, radius, kind, from_cache, ctx.provenance())
    settings, result = CU.export_json(view, verdict, radius, kind, beta, from_cache)
    W.exports(f"rrs_certify_{ctx.image_name}", "certify_export",
              png=W.maps_png(ctx, panels, CU.pixel_cell(sampled), opacity, footer,
                             title=f"{ctx.image_name}: certified top-{sampled.k}"),
              extra_png=("PNG radius vs β", lambda: P.curves_png(curve_series, "β", f"certified radius ({unit})",
                                                                  "Certified radius versus β", reverse_x=True,
                                                                  footer=footer), "beta_curve"),
              csv=export.to_csv(CU.export_csv_rows(view, beta), header=header),
              json_text=export.to_json("certify", settings, result, ctx.provenance()))
