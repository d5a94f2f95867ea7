"""Certify: which top cells of the RRS map are guaranteed to stay, and up to what change —
certified while the samples arrive (anytime), valid whenever the run stops."""
import hashlib
import math
import time
from contextlib import closing

import numpy as np
import streamlit as st

from rrs import plots as P
from rrs.compute import Cancelled
from rrs.compute import device as D
from rrs.methods import RAW_METHODS
from rrs.settings import L2, CertifySettings, MapSettings
from rrs.timing import RATES, calibrate, format_seconds, sample_key
from ui import budgets, caching, export, jobs, sidebar, state
from ui import certify as CU
from ui import widgets as W
from ui.compute import CERTIFY_BETAS

ctx = sidebar.page("Certify", "A **certificate** is a mathematical guarantee: for *every* change of the image "
                   "up to a size L, the top cells of the RRS map stay in the top-k. It holds for the map "
                   "expected over the noise; the **finite-sample** value also accounts for having only T "
                   "samples and holds with probability 1 − η, while the **plug-in** value treats the "
                   "T-sample map as exact (an estimate, not a guarantee). Certificates update while the "
                   "samples arrive; stopping keeps the last one, still valid.")
CAP = budgets.MAX_SAMPLES[budgets.device_kind(ctx.model)]

# ------------------------------------------------------------------------------ controls
c1, c2, c3, c4 = st.columns([1.4, 1.4, 1.2, 0.8])
base = W.method_select(c1, "Base attribution", "certify_base", "vanilla", options=RAW_METHODS,
                       help="The map RRS smooths and certifies.")
cell = W.cell_slider(ctx, c2, "certify_cell", 32, disabled=base == "gradcam",
                     help="Coarse cells give far stronger certificates: fewer cells compete for the top-k.")
k = W.k_slider(c3, "certify_k", 10.0)
seed = W.seed_input(c4, "certify_seed")

c5, c6, c7 = st.columns([2.4, 1.3, 1.1])
sigma = W.sigma_slider(ctx, c5, "certify_sigma", 0.25)
samples = state.widget(c6.select_slider, "Samples T", "certify_samples", 1024,
                       options=[t for t in CU.T_OPTIONS if t <= CAP],
                       help="Noise draws; they arrive in doubling checkpoints and every checkpoint is certified. "
                            "More samples = tighter finite-sample certificate.")
eta = state.widget(c7.select_slider, "Failure probability η", "certify_eta", 0.05,
                   options=[0.001, 0.01, 0.05, 0.1, 0.2],
                   help="The finite-sample certificates hold with probability at least 1 − η over the sampling "
                        "(split over the checkpoints, so stopping early keeps them valid).")
with st.expander("Scheme, RRS scoring vector, noise type and precision"):
    s0, s1, s2, s3 = st.columns([1.5, 1.2, 1.6, 1])
    scheme = state.widget(s0.radio, "Finite-sample scheme", "certify_scheme", "selection", options=list(CU.SCHEMES),
                          format_func=lambda s: CU.SCHEMES[s][0],
                          help=" ".join(f"{v[0]}: {v[1]}" for v in CU.SCHEMES.values()))
    s0.caption(CU.SCHEMES[scheme][1])
    scoring, scoring_param = W.scoring_controls(
        s1, s2, "certify", help="Top-k′ uniform scores allow exact (Clopper–Pearson) intervals: the strongest "
                                "finite-sample certificates.")
    noise = W.noise_radio(s3, "certify_noise", help="The Gaussian-CDF certificate exists only for Gaussian noise.")
    precision = state.widget(s3.radio, "Precision", "certify_precision", D.precision(ctx.model, ctx.x),
                             options=["fp32", "bf16"],
                             horizontal=True, help="bf16 autocast is faster; the certificate is then about the "
                                                   "map computed in bf16 (bench/precision.py: it agrees with fp32 "
                                                   "within the no-attack floor).")

settings = W.settings_or_stop(lambda: MapSettings(
    method="rrs", base=base, noise=noise, sigma=sigma, samples=int(samples), cell=cell, k=k, scoring=scoring,
    scoring_param=scoring_param, seed=seed, precision=precision))
run_key = (ctx.model_key, ctx.image_digest, ctx.size, settings, scheme)
plan = CU.plan_run(int(samples), scheme)

# predicted time before the run (a 4-sample pilot measures the rate the first time)
rate_key = sample_key(ctx.model, ctx.x[None], settings)
if RATES.rate(rate_key) is None:
    calibrate(ctx.model, ctx.x, settings)
predicted = CU.predict_seconds(ctx.model, ctx.x, settings, int(samples))
c6.caption(f"predicted {format_seconds(predicted)} on {ctx.device} · checkpoints at T = "
           + ", ".join(f"{t:,}" for t in plan.totals()))


def record_for(key):
    """The run of these settings: this session's (possibly stopped) run, else a completed one
    from the server's cache."""
    runs = st.session_state.setdefault("certify.runs", {})
    if key in runs:
        return runs[key], False
    stored = caching.certify_store().get(key)
    return (stored, True) if stored is not None else (None, False)


def live_panel(holder, sampled, view) -> None:
    """What is redrawn after every checkpoint (no widgets: they cannot be re-created in a loop)."""
    j = len(sampled.checkpoints)
    nxt = sampled.next_seconds()
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
            W.figure(P.map_figure(ctx.picture, sampled.map(), sampled.pixel_cell, 0.6, title="RRS map so far"),
                     f"certify_live_map_{j}", "Bright = the cells RRS ranks highest over the noise draws so far.")
        with right:
            W.figure(P.region_figure(ctx.picture, view.categories(0.0, "best", True), sampled.pixel_cell, 0.55,
                                     title="Certified cells so far"), f"certify_live_region_{j}",
                     "Blue = guaranteed (finite-sample) to stay in the top-k, each up to its own radius; "
                     "the region grows as samples arrive.")


def run_live(key) -> None:
    """Sample in doubling checkpoints, certify each, redraw; keep every checkpoint reached."""
    holder = st.empty()
    stop = st.empty()
    stop.button("Stop (keep the result so far)", key="certify_stop", icon=":material/stop:")
    bar = W.Progress(f"Drawing {int(samples):,} noise samples in {len(plan.checkpoints)} checkpoints")
    cert = CertifySettings(norm=st.session_state.get("certify_norm", L2), eta=float(eta), betas=CERTIFY_BETAS)
    runs = st.session_state.setdefault("certify.runs", {})
    try:
        with closing(jobs.anytime(ctx.model, ctx.x, settings, scheme, progress=bar)) as stream:
            for sampled in stream:
                runs[key] = sampled
                if sampled.flat:
                    break
                live_panel(holder, sampled, caching.anytime_view(key, sampled, cert))
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


b1, b2 = st.columns([1, 3])
clicked = b1.button("Certify", type="primary", key="certify_run", icon=":material/play_arrow:",
                    help="Draw the noise samples in doubling checkpoints and certify after each one.")
if clicked or st.session_state.pop("certify.go", False):
    run_live(run_key)

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
               f"{CU.SCHEMES[sampled.scheme][0].lower()}).")
else:
    view_key = run_key
    st.session_state["certify.last"] = (run_key, sampled)
if sampled.flat:
    st.warning("All cells of this map are equal: the attribution is flat for this image and model, so there is "
               "no top-k to certify. Try another image, base attribution or a smaller σ.", icon=":material/block:")
    st.stop()

# ------------------------------------------------------------------------- status line
when = time.strftime("%H:%M", time.localtime(sampled.started))
cost = f"{sampled.elapsed:.1f} s on {sampled.device} ({sampled.rate:.1f} samples/s)"
if not sampled.complete:
    st.warning(f"Stopped at T = {sampled.samples_done:,} of {sampled.plan.total:,}, valid: every certificate "
               f"shown holds with probability ≥ {1 - float(eta):.0%} (η is split over the checkpoints, so stopping "
               f"early costs nothing in validity). Sampling took {cost}. Press **Certify** to run again.",
               icon=":material/pause_circle:")
elif from_cache:
    st.info(f"From the cache: computed earlier (at {when}) in {cost}; shown now without sampling again.",
            icon=":material/cached:")
else:
    st.caption(f":material/check_circle: Complete: T = {sampled.samples_done:,} in "
               f"{len(sampled.checkpoints)} checkpoint{'s' * (len(sampled.checkpoints) != 1)}, {cost}, at {when}.")

# --------------------------------------------------------------------------- view controls
v1, v2, v3, v4 = st.columns([1.3, 2.3, 1.4, 1.1])
norm = W.norm_radio(v1, "Threat norm", "certify_norm", L2,
                    help="How the size of a change is measured: ℓ2 = overall energy, ℓ∞ = largest change "
                         "of any single value, ℓ1 = total change.")
cert = CertifySettings(norm=norm, eta=float(eta), betas=CERTIFY_BETAS)
view = caching.anytime_view(view_key, sampled, cert)
has_cdf = view.report.cdf_cells_finite is not None
kind = state.widget(v3.selectbox, "Certificate for the region", "certify_kind", "best",
                    options=["best", "rdp", "cdf"] if has_cdf else ["rdp"],
                    format_func={"best": "Best of RDP and Gaussian-CDF", "rdp": "RDP (exact)",
                                 "cdf": "Gaussian-CDF"}.get,
                    help="Both certificates are sound; a cell certified by either is guaranteed.")
beta = state.widget(v4.select_slider, "β (share that must stay)", "certify_beta", 1.0,
                    options=list(CERTIFY_BETAS), format_func=lambda b: f"{b:.0%}",
                    help="β = 1: every top-k cell must stay; β = 0.8: at least 80% of them.")
scale = 255.0 if norm.is_inf else 1.0            # ℓ∞ radii are shown in 1/255 steps


def slider_range():
    """(max, default) of the radius slider from finite radii only (∞ never reaches a widget)."""
    pool = np.concatenate([view.cell_radii(kind, True), view.cell_radii(kind, False), view.important,
                           [view.guaranteed(beta)]])
    pool = pool[np.isfinite(pool) & (pool > 0)]
    top = float(pool.max()) if pool.size else {1.0: 1.0, 2.0: 0.05}.get(norm.p, 1 / 255)
    smax = float(f"{top * 1.25 * scale:.2g}")
    fin = view.cell_radii(kind, True)
    fin = fin[np.isfinite(fin) & (fin > 0)]
    # just below the radius: a radius r guarantees changes of size < r
    # (per cell: below the smallest certified radius, so the region shows every cell the verdict counts)
    default = 0.99 * (view.guaranteed(beta) or (float(fin.min()) if fin.size else top / 2))
    return smax, float(min(max(default * scale, smax / 200), smax))


smax, sdefault = slider_range()
# The key names this result: a new run gets a fresh slider at its own guaranteed radius (issue 10:
# a slider whose bounds change under a fixed key was reset to 0, an empty "at most 0" claim).
token = hashlib.sha1(repr((run_key, sampled.samples_done, float(eta), norm.key, kind)).encode()).hexdigest()[:10]
radius_shown = v2.slider("Radius L to draw" + (" (in 1/255 steps)" if norm.is_inf else " (pixel units)"),
                         min_value=smax / 200, max_value=smax, value=sdefault, step=smax / 200, format="%.3g",
                         key=f"certify_radius_{token}",
                         help="The regions show the cells guaranteed to stay for every change of at most this size. "
                              "It starts at the guaranteed radius of this result.")
radius = radius_shown / scale
L_text = CU.radius_text(radius, norm, view.dim)
v2.caption(L_text)

# ------------------------------------------------------------------------------- verdict
verdict = CU.verdict(view, float(beta))
box = {"ok": st.success, "tiny": st.warning, "vacuous": st.warning}[verdict.level]
box(f"{verdict.whole}  \n{verdict.cells}", icon={"ok": ":material/verified:", "tiny": ":material/info:",
                                                 "vacuous": ":material/block:"}[verdict.level])


def suggestion_buttons() -> None:
    """Only what is predicted to raise the certificate, each with its predicted time."""
    pilots = st.session_state.get("certify.pilots", {}).get(run_key)
    found = CU.suggestions(view, float(beta), CAP, W.cells_options(ctx.size), pilots)
    cands = CU.pilot_candidates(settings, W.cells_options(ctx.size))
    if not found and pilots is not None:
        st.caption("None of the changes checked (more samples, " + ", ".join(
            c.replace("Use ", "").replace("Try ", "") for c in cands) + ") is predicted to raise the certificate "
            "at these settings.")
    if found:
        cols = st.columns(len(found))
        for col, sg in zip(cols, found):
            now = CU.radius_text(sg.now_radius, norm, view.dim)
            pred = CU.radius_text(sg.radius, norm, view.dim)
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
            res = W.run("Pilot maps for the suggestions", jobs.pilots, ctx.model, ctx.x, settings,
                        W.cells_options(ctx.size))
            if res is not None:
                st.session_state.setdefault("certify.pilots", {})[run_key] = res
                st.rerun()


if view_key == run_key:
    suggestion_buttons()

# ------------------------------------------------------------------------------- numbers
unit = "1/255, ℓ∞" if norm.is_inf else norm.label


def shown(r: float) -> str:
    return "unbounded" if math.isinf(r) else f"{r * scale:.3g}"


fin_best, plug_best = view.guaranteed(beta), view.plugin(beta)
cert_fin = int((view.categories(radius, kind, True) == 2).sum())
cert_plug = int((view.categories(radius, kind, False) == 2).sum())
imp_fin = int((view.important > radius).sum())
m = st.columns(3)
W.metric(m[0], f"Guaranteed ({unit})", shown(fin_best),
         f"plug-in {shown(plug_best)}" + (" at this T" if math.isinf(plug_best) else ""),
         help=f"Finite-sample whole-set certificate at β = {beta:.0%} (best of RDP and Gaussian-CDF, best over the "
              f"checkpoints): holds with probability ≥ {1 - float(eta):.0%}. The plug-in value treats the sampled "
              "map as exact (not a guarantee).")
W.metric(m[1], "Cells certified at L", f"{cert_fin} of {sampled.k}", f"plug-in {cert_plug} of {sampled.k}",
         help="Top cells guaranteed (finite-sample) to stay in the top-k, each on its own, at the radius L drawn below.")
W.metric(m[2], "Stay important at L", f"{imp_fin} of {sampled.n}", f"τ = {view.tau:g}",
         help="Cells whose importance score (share of noise draws with the cell in the top-k′) provably stays above "
              "τ for every change of at most L (finite-sample).")
m = st.columns(3)
W.metric(m[0], f"RDP exact ({unit})", shown(view.radius("rdp_finite", beta)),
         f"plug-in {shown(view.radius('rdp_plugin', beta))}",
         help="Rényi-DP certificate with the exact minimal divergence: finite-sample radius (plug-in below).")
if has_cdf:
    W.metric(m[1], f"Gaussian-CDF ({unit})", shown(view.radius("cdf_finite", beta)),
             f"plug-in {shown(view.radius('cdf_plugin', beta))}",
             help="Per-cell Gaussian-CDF certificate (Salman et al. 2019): finite-sample radius (plug-in below).")
else:
    W.metric(m[1], "Gaussian-CDF", "n/a", "needs Gaussian noise")
W.metric(m[2], "Samples", f"{sampled.samples_done:,}", f"{sampled.elapsed:.1f} s · {sampled.rate:.1f}/s",
         help=f"{CU.SCHEMES[sampled.scheme][0]}: {sampled.plan.selection:,} selection samples, then estimation "
              f"checkpoints {', '.join(f'{c:,}' for c in sampled.plan.checkpoints)}.")
if math.isinf(plug_best):
    st.caption("Plug-in radius unbounded at this T: in every sample the top cells were the same, so the "
               "T-sample map cannot be moved at all (an estimate; the finite-sample value is the guarantee).")

# ------------------------------------------------------------------------------- figures
opacity = W.opacity_slider("certify_opacity", 0.55)
cell_px = sampled.pixel_cell
cat_plug, cat_fin = view.categories(radius, kind, False), view.categories(radius, kind, True)
left, right = st.columns(2, gap="medium")
with left:
    W.figure(P.region_figure(ctx.picture, cat_plug, cell_px, opacity, title="Top-k region, plug-in (estimate)"),
             "certify_region_plug", f"Blue cells stay in the top-k for any change of size at most {L_text}, "
                                    "if the sampled map were exact; orange = top-k but not certified.")
with right:
    W.figure(P.region_figure(ctx.picture, cat_fin, cell_px, opacity,
                             title=f"Top-k region, guaranteed ({1 - float(eta):.0%})"),
             "certify_region_fin", f"Blue cells are guaranteed to stay in the top-k for any change of size at "
                                   f"most {L_text}; orange = top-k but not certified.")


def radius_maps(grid_a, grid_b, titles, keys, captions) -> None:
    """Two per-cell radius maps on one colour scale; unbounded (∞) cells drawn at the top."""
    both = np.concatenate([grid_a.ravel(), grid_b.ravel()]) * scale
    finite = both[np.isfinite(both)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    cols = st.columns(2, gap="medium")
    for col, grid, title, key, cap in zip(cols, (grid_a, grid_b), titles, keys, captions):
        g = grid * scale
        n_inf = int(np.isinf(g).sum())
        with col:
            W.figure(P.radius_figure(ctx.picture, np.where(np.isinf(g), top, g), cell_px, 0.8, zmax=top, unit=unit,
                                     title=title), key,
                     cap + (f" {n_inf} cell(s) unbounded at this T (plug-in), drawn at the top of the scale."
                            if n_inf else ""))


radius_maps(view.radius_grid(kind, False), view.radius_grid(kind, True),
            ("Per-cell radius, plug-in", "Per-cell radius, finite-sample"), ("certify_radii_plug", "certify_radii_fin"),
            ("Brighter = the cell stays in the top-k under larger changes (estimate); other cells not drawn.",
             "Brighter = the cell is guaranteed to stay in the top-k under larger changes; same colour scale."))

st.markdown("##### Stays important — a different question")
st.caption(f"The top-k certificate above says *the top-k set of the smoothed map stays*. This one says *each of "
           f"these cells stays in the top-k′ for most noise draws* (its importance score stays above τ = "
           f"{view.tau:g}), however the ranking among them changes — usually a much larger radius at small T "
           "(Anani et al. 2025; method.md §6b).")
left, right = st.columns(2, gap="medium")
with left:
    W.figure(P.region_figure(ctx.picture, view.important_region(radius, True), cell_px, opacity,
                             title="Stays important, finite-sample"), "certify_important_region",
             f"Blue = guaranteed to stay important (score > τ) for any change of at most {L_text}; orange = "
             "important now but not guaranteed at L.")
with right:
    g = view.important_grid(True) * scale
    W.figure(P.radius_figure(ctx.picture, g, cell_px, 0.8, unit=unit, title="Stays important: per-cell radius"),
             "certify_important_radii", "Brighter = the cell stays important under larger changes (finite-sample); "
                                        "cells with no guarantee not drawn.")

curves = view.curves()
for c in curves:
    c["radius"] = [r * scale for r in c["radius"]]
left, right = st.columns([1.6, 1], gap="medium")
with left:
    W.figure(P.beta_curve_figure(curves, title="Certified radius versus β", unit=unit), "certify_beta_curve",
             "Higher = stronger guarantee; smaller β (fewer top cells must stay) allows larger changes. Solid circles "
             "= plug-in estimate, dotted diamonds = finite-sample guarantee; thin grey dashes = equal-level form, "
             "for comparison only (not a certificate for β<1).")
with right:
    st.table([{"certificate": c["name"].replace(" — not a certificate for β<1", " (not a certificate for β<1)"),
               f"radius at β = {beta:.0%}": CU.radius_text(view.radius(c["group"], beta), norm, None)
               if math.isinf(view.radius(c["group"], beta)) else f"{view.radius(c['group'], beta) * scale:.4g}"}
              for c in curves])
    st.caption(f"Radii in {unit}. η = {float(eta):g}; k = {sampled.k} of {sampled.n} cells; "
               f"dimension N = {view.dim:,} input values; scheme: {CU.SCHEMES[sampled.scheme][0].lower()}.")

hist = view.history
if len(hist) > 1:
    W.figure(P.lines_figure([{"name": "cells certified on their own", "x": [h["total"] for h in hist],
                              "y": [h["cells_certified"] for h in hist], "color": P.CERTIFIED},
                             {"name": "cells that stay important", "x": [h["total"] for h in hist],
                              "y": [h["stays_important"] for h in hist], "color": P.TOPK, "dash": "dot"}],
                            "samples T (checkpoints)", "cells", title="The certificate growing with T", height=300),
             "certify_history", "Each point is a checkpoint; its certificates used η·2^−(j+1) of the failure "
                                "probability, so all of them hold at once.")

# ------------------------------------------------------------------------ try to break it
st.markdown("##### Try to break it")
plan_src, plan_r, plan_cells = CU.break_plan(view, float(beta), kind)
if norm.p not in (2.0, math.inf):
    st.caption("The attack supports ℓ2 and ℓ∞ budgets; switch the threat norm to ℓ2 or ℓ∞ to try it.")
elif plan_r <= 0:
    st.caption("Nothing is certified yet, not even as a plug-in estimate: there is no radius to attack.")
else:
    attack_secs = CU.predict_seconds(ctx.model, ctx.x, settings, 2 * (3 * min(64, int(samples)) + 30))
    st.caption(f"Runs the top-k interpretation attack ({norm.label}) at exactly the certified radius "
               f"{CU.radius_text(plan_r, norm, view.dim)} ({plan_src}; {len(plan_cells)} cell(s) claimed to hold), "
               f"then at 10× that budget.")
    broken = st.session_state.setdefault("certify.break", {})
    bkey = (view_key, sampled.samples_done, norm.key, kind, float(beta), float(eta))
    if st.button(f"Try to break it ({format_seconds(attack_secs)})", key="certify_break", icon=":material/bolt:"):
        res = W.run("Attacking the map at the certified radius and at 10×", jobs.break_it, ctx.model, ctx.x, view,
                    float(beta), kind)
        if res is not None:
            broken[bkey] = res
    if bkey in broken:
        for line in broken[bkey].lines(view.dim):
            st.markdown(f"- {line}")
        st.caption(f"Attacked maps use {broken[bkey].eval_samples} samples at seed s+1 and are compared with the "
                   f"no-attack floor at the same T; {broken[bkey].elapsed:.1f} s.")

# -------------------------------------------------------------------------------- export
used = sampled.settings
W.provenance(ctx, sampled.elapsed + view.elapsed, sampled.device, used.seed,
             f"{used.describe()}, {CU.SCHEMES[sampled.scheme][0].lower()}, η = {float(eta):g}, norm {norm.label}"
             + (" (from the cache)" if from_cache else ""))
footer = (f"{used.describe()} · {sampled.scheme} scheme · η={float(eta):g} · {norm.label} · L={L_text} · "
          f"image {ctx.image_name} ({ctx.image_digest})")
grid_plug, grid_fin = view.radius_grid(kind, False) * scale, view.radius_grid(kind, True) * scale
panels = [{"title": "top-k region, plug-in", "categories": cat_plug},
          {"title": f"top-k region, finite-sample (1-η={1 - float(eta):g})", "categories": cat_fin},
          {"title": "stays important, finite-sample", "categories": view.important_region(radius, True)},
          {"title": f"per-cell radius, finite-sample ({unit})", "radii": np.where(np.isinf(grid_fin), np.nan, grid_fin)}]
curve_series = [{"name": c["name"], "x": c["beta"], "y": c["radius"], "dash": c["dash"], "color": c["color"],
                 "marker": c["marker"]} for c in curves]
status = "complete" if sampled.complete else f"stopped at T = {sampled.samples_done}, valid"
view_info = {"radius_drawn": radius, "region_certificate": kind, "scheme": sampled.scheme, "status": status,
             "samples_done": sampled.samples_done, "from_cache": from_cache}
header = {"settings": used, "certify": cert, **view_info, "provenance": ctx.provenance()}
csv_rows = [{"table": "certificate", **r} for r in view.rows()] + [{"table": "cell", **r} for r in view.cell_rows()]
W.exports(f"rrs_certify_{ctx.image_name}", "certify_export",
          png=W.maps_png(ctx, panels, cell_px, opacity, footer, title=f"{ctx.image_name}: certified top-{sampled.k}"),
          extra_png=("PNG radius vs β", lambda: P.curves_png(curve_series, "β", f"certified radius ({unit})",
                                                              "Certified radius versus β", reverse_x=True,
                                                              footer=footer), "beta_curve"),
          csv=export.to_csv(csv_rows, header=header),
          json_text=export.to_json("certify", {"map": used, "certify": cert, **view_info},
                                   {"certificates": view.rows(), "cells": view.cell_rows(), "history": list(hist),
                                    "stays_important": {"tau": view.tau, "eta": float(eta),
                                                        "radii_finite": view.important.tolist(),
                                                        "radii_plugin": view.important_plugin.tolist()},
                                    "k": sampled.k, "n": sampled.n, "dim": view.dim,
                                    "verdict": {"level": verdict.level, "whole_set": verdict.whole,
                                                "per_cell": verdict.cells},
                                    "elapsed_s": sampled.elapsed, "device": sampled.device,
                                    "samples_used": sampled.samples_done,
                                    "selection_samples": sampled.plan.selection},
                                   ctx.provenance()))
