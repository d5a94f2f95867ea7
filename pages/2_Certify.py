"""Certify: which top cells of the RRS map are guaranteed to stay, and up to what change."""
import math

import numpy as np
import streamlit as st

from rrs import plots as P
from rrs import session as S
from ui import common as ui

ctx = ui.page("Certify", "A **certificate** is a mathematical guarantee: for *every* change of the image "
              "up to a size L, the top cells of the RRS map stay in the top-k. It holds for the map "
              "expected over the noise; the **finite-sample** value also accounts for having only T "
              "samples and holds with probability 1 − η, while the **plug-in** value treats the "
              "T-sample map as exact (an estimate, not a guarantee).")

# ------------------------------------------------------------------------------ controls
c1, c2, c3, c4 = st.columns([1.4, 1.4, 1.2, 0.8])
base = ui.widget(c1.selectbox, "Base attribution", "certify_base", "vanilla", options=list(S.BASE_LABELS),
                 format_func=S.BASE_LABELS.get, help="The map RRS smooths and certifies.")
cell = ui.widget(c2.select_slider, "Cell size", "certify_cell", 32, options=ui.cells_options(ctx.size),
                 format_func=ui.cell_label, disabled=base == "gradcam",
                 help="Coarse cells give far stronger certificates: fewer cells compete for the top-k.")
k_percent = ui.widget(c3.slider, "Top-k: share of cells", "certify_k", 10.0, min_value=1.0, max_value=50.0,
                      step=1.0, format="%g%%")
seed = ui.widget(c4.number_input, "Seed", "certify_seed", 0, min_value=0, max_value=2**31 - 1, step=1)

c5, c6, c7 = st.columns([2.4, 1.2, 1.2])
sigma = ui.sigma_slider(ctx, c5, "certify_sigma", 0.25)
samples = ui.widget(c6.number_input, "Certification samples T", "certify_samples", 1024, min_value=16,
                    max_value=1_000_000, step=256,
                    help="Noise draws used to estimate the map and its confidence intervals. Hundreds to "
                         "thousands; more samples = tighter finite-sample certificate.")
eta = ui.widget(c7.select_slider, "Failure probability η", "certify_eta", 0.05,
                options=[0.001, 0.01, 0.05, 0.1, 0.2],
                help="The finite-sample certificate holds with probability at least 1 − η over the sampling.")
with st.expander("RRS scoring vector and noise type"):
    s1, s2, s3 = st.columns([1.2, 1.6, 1])
    scoring = ui.widget(s1.selectbox, "Scoring family", "certify_scoring", "topk", options=list(S.SCORING_LABELS),
                        format_func=S.SCORING_LABELS.get,
                        help="Top-k′ uniform scores allow exact (Clopper–Pearson) intervals: the strongest "
                             "finite-sample certificates.")
    label, lo, hi, default, step = S.SCORING_PARAMS[scoring]
    scoring_param = ui.widget(s2.slider, label, f"certify_scoring_param_{scoring}", default, min_value=lo,
                              max_value=hi, step=step)
    noise = ui.widget(s3.radio, "Noise", "certify_noise", "gaussian", options=["gaussian", "laplace"],
                      format_func=str.capitalize, horizontal=True,
                      help="The Gaussian-CDF certificate exists only for Gaussian noise.")

settings = S.MapSettings(method="rrs", base=base, sigma=float(sigma), samples=int(samples), cell=int(cell),
                         k_percent=float(k_percent), scoring=scoring, scoring_param=float(scoring_param),
                         seed=int(seed), noise=noise)
run_key = (ctx.model_key, ctx.image_digest, ctx.size, settings)
if not ui.run_gate("certify", run_key, "Certify", "Draw the T noise samples and compute every certificate."):
    st.info(f"Press **Certify** to draw {int(samples):,} noise samples and compute the certificates. "
            "Progress is shown while it runs; changing a setting cancels it.", icon=":material/info:")
    st.stop()

mr = ui.run(f"Drawing {int(samples):,} noise samples for the RRS map", ui.cached_map, ctx.model_key,
            ctx.image_digest, ctx.size, settings, _model=ctx.model, _x=ctx.x)
if mr is None:
    st.stop()
ui.mark_done("certify", run_key)
if mr.message:
    st.warning(mr.message, icon=":material/warning:")

# --------------------------------------------------------------------------- view controls
v1, v2, v3, v4 = st.columns([1.4, 2.2, 1.4, 1.2])
norm_name = ui.widget(v1.radio, "Threat norm", "certify_norm", "ℓ2", options=list(S.NORMS), horizontal=True,
                      help="How the size of a change is measured: ℓ2 = overall energy, ℓ∞ = largest change "
                           "of any single value, ℓ1 = total change.")
norm = S.NORMS[norm_name]
try:
    cr = ui.cached_certificate(ctx.model_key, ctx.image_digest, ctx.size, settings, norm, float(eta), mr)
except ValueError as e:
    st.error(str(e), icon=":material/error:")
    st.stop()
kind = ui.widget(v3.selectbox, "Certificate for the region", "certify_kind", "best",
                 options=["best", "rdp", "cdf"] if cr.cdf_plugin is not None else ["rdp"],
                 format_func={"best": "Best of RDP and Gaussian-CDF", "rdp": "RDP (exact)",
                              "cdf": "Gaussian-CDF"}.get,
                 help="Both certificates are sound; a cell certified by either is guaranteed.")
beta = ui.widget(v4.select_slider, "β (share that must stay)", "certify_beta", 1.0,
                 options=list(cr.report.betas), format_func=lambda b: f"{b:.0%}",
                 help="β = 1: every top-k cell must stay; β = 0.8: at least 80% of them.")

radii_plug = cr.cell_radii(kind, finite=False)
radii_fin = cr.cell_radii(kind, finite=True)
top_radius = float(max(radii_plug.max(), radii_fin.max()))
unit_scale = 255.0 if math.isinf(norm) else 1.0          # ℓ∞ radii are shown in 1/255 steps
fallback = {1.0: 1.0, 2.0: 0.05}.get(norm, 1 / 255)
slider_max = float(f"{max(top_radius * 1.25, fallback * 0.2) * unit_scale:.2g}")
slider_max = slider_max if slider_max > 0 else fallback * unit_scale
radius_shown = ui.widget(
    v2.slider, "Radius L to draw" + (" (in 1/255 steps)" if math.isinf(norm) else " (pixel units)"),
    f"certify_radius_{norm_name}", slider_max / 5, min_value=0.0, max_value=slider_max,
    step=slider_max / 100, format="%.3g",
    help="The region shows the top cells guaranteed to stay for every change of at most this size.")
radius = radius_shown / unit_scale
v2.caption(S.format_radius(radius, norm, mr.dim))

# ------------------------------------------------------------------------------- verdict
verdict = cr.verdict(float(beta), ui.cells_options(ctx.size))
box = {"ok": st.success, "tiny": st.warning, "vacuous": st.warning}[verdict.level]
box(verdict.text, icon={"ok": ":material/verified:", "tiny": ":material/info:",
                        "vacuous": ":material/block:"}[verdict.level])
if verdict.suggestions:
    bcols = st.columns(len(verdict.suggestions))
    for col, (text, updates) in zip(bcols, verdict.suggestions):
        col.button(text, key=f"certify_try_{'_'.join(updates)}", on_click=ui.request_run,
                   args=("certify", updates), width="stretch")

# ------------------------------------------------------------------------------- numbers
fin_best = max(cr.radius("rdp_finite", beta), cr.radius("cdf_finite", beta))
plug_best = max(cr.radius("rdp_plugin", beta), cr.radius("cdf_plugin", beta))
cert_plug = int((cr.categories(radius, kind, False) == 2).sum())
cert_fin = int((cr.categories(radius, kind, True) == 2).sum())
unit_note = "1/255 (ℓ∞)" if math.isinf(norm) else cr.unit
m = st.columns(5)
ui.metric(m[0], "Guaranteed radius", f"{fin_best * unit_scale:.3g}",
          f"{unit_note}; plug-in estimate {plug_best * unit_scale:.3g}",
          help=f"Finite-sample certificate at β = {beta:.0%} (best of RDP and Gaussian-CDF): holds with probability "
               f"≥ {1 - cr.eta:.0%}. The plug-in value treats the sampled map as exact (not a guarantee).")
ui.metric(m[1], "RDP exact", f"{cr.radius('rdp_finite', beta) * unit_scale:.3g}",
          f"plug-in {cr.radius('rdp_plugin', beta) * unit_scale:.3g}",
          help="Rényi-DP certificate with the exact minimal divergence: finite-sample radius (plug-in below).")
if cr.cdf_plugin is not None:
    ui.metric(m[2], "Gaussian-CDF", f"{cr.radius('cdf_finite', beta) * unit_scale:.3g}",
              f"plug-in {cr.radius('cdf_plugin', beta) * unit_scale:.3g}",
              help="Per-cell Gaussian-CDF certificate (Salman et al. 2019): finite-sample radius (plug-in below).")
else:
    ui.metric(m[2], "Gaussian-CDF", "n/a", "needs Gaussian noise")
ui.metric(m[3], "Cells certified at L", f"{cert_fin} of {mr.k}", f"plug-in {cert_plug} of {mr.k}",
          help="Top cells guaranteed (finite-sample) to stay in the top-k at the radius drawn below.")
ui.metric(m[4], "Time", f"{mr.elapsed + cr.elapsed:.1f} s", f"{mr.samples_used:,} samples on {mr.device}")

# ------------------------------------------------------------------------------- figures
opacity = ui.opacity_slider("certify_opacity", 0.55)
cat_plug = cr.categories(radius, kind, finite=False)
cat_fin = cr.categories(radius, kind, finite=True)
L_text = S.format_radius(radius, norm, mr.dim)
left, right = st.columns(2, gap="medium")
with left:
    ui.figure(P.region_figure(ctx.picture, cat_plug, mr.pixel_cell, opacity, title="Plug-in (estimate)"),
              "certify_region_plug", f"Blue cells stay in the top-k for any change of size at most {L_text}, "
                                     "if the sampled map were exact; orange = top-k but not certified.")
with right:
    ui.figure(P.region_figure(ctx.picture, cat_fin, mr.pixel_cell, opacity,
                              title=f"Finite-sample (probability ≥ {1 - cr.eta:.0%})"),
              "certify_region_fin", f"Blue cells are guaranteed to stay in the top-k for any change of size at "
                                    f"most {L_text}; orange = top-k but not certified.")

grid_plug = cr.radius_grid(kind, finite=False) * unit_scale
grid_fin = cr.radius_grid(kind, finite=True) * unit_scale
shared = float(np.nanmax(np.concatenate([grid_plug.ravel(), grid_fin.ravel(), [0.0]]))) or 1.0
unit_label = "1/255, ℓ∞" if math.isinf(norm) else cr.unit
left, right = st.columns(2, gap="medium")
with left:
    ui.figure(P.radius_figure(ctx.picture, grid_plug, mr.pixel_cell, 0.8, zmax=shared, unit=unit_label,
                              title="Per-cell radius, plug-in"), "certify_radii_plug",
              "Brighter = the cell stays in the top-k under larger changes (estimate); other cells not drawn.")
with right:
    ui.figure(P.radius_figure(ctx.picture, grid_fin, mr.pixel_cell, 0.8, zmax=shared, unit=unit_label,
                              title="Per-cell radius, finite-sample"), "certify_radii_fin",
              "Brighter = the cell is guaranteed to stay in the top-k under larger changes; same colour scale.")

curves = cr.curves()
for c in curves:
    c["radius"] = [r * unit_scale for r in c["radius"]]
left, right = st.columns([1.6, 1], gap="medium")
with left:
    ui.figure(P.beta_curve_figure(curves, title="Certified radius versus β", unit=unit_label), "certify_beta_curve",
              "Higher = stronger guarantee; asking that fewer top cells stay (smaller β) allows larger changes. "
              "Dashed: the equal-level form, shown for comparison only — not a certificate for β<1.")
with right:
    table = [{"certificate": c["name"].replace(" — not a certificate for β<1", " (not a certificate for β<1)"),
              f"radius at β = {beta:.0%}": f"{cr.radius(c['group'], beta) * unit_scale:.4g}"} for c in cr.curves()]
    st.table(table)
    st.caption(f"Radii in {unit_label}. η = {cr.eta:g}; k = {mr.k} of {mr.n} cells; "
               f"dimension N = {mr.dim:,} input values.")
ui.provenance(ctx, mr.elapsed + cr.elapsed, mr.device, settings.seed,
              f"{settings.describe()}, η = {cr.eta:g}, norm {norm_name}")

# -------------------------------------------------------------------------------- export
footer = f"{settings.describe()} · η={cr.eta:g} · {norm_name} · L={L_text} · image {ctx.image_name} ({ctx.image_digest})"
panels = [{"title": "certified region, plug-in", "categories": cat_plug},
          {"title": f"certified region, finite-sample (1-η={1 - cr.eta:g})", "categories": cat_fin},
          {"title": f"per-cell radius, plug-in ({unit_label})", "radii": grid_plug, "zmax": shared},
          {"title": f"per-cell radius, finite-sample ({unit_label})", "radii": grid_fin, "zmax": shared}]
curve_series = [{"name": c["name"], "x": c["beta"], "y": c["radius"], "dash": c["dash"], "color": c["color"]}
                for c in curves]
header = {"settings": ui.settings_dict(settings), "norm": norm_name, "eta": cr.eta, "radius_drawn": radius,
          "region_certificate": kind, "provenance": ctx.provenance()}
rows = cr.rows()
cell_rows = [{"cell": int(i), "row": int(i) // mr.grid[1], "col": int(i) % mr.grid[1],
              "map_value": float(mr.map.ravel()[i]),
              "radius_plugin": float(radii_plug[i]), "radius_finite": float(radii_fin[i]),
              "rdp_radius_finite": float(cr.cell_radii("rdp", True)[i])} for i in cr.report.selected]
ui.exports(f"rrs_certify_{ctx.image_name}", "certify_export",
           png=ui.maps_png(ctx, panels, mr.pixel_cell, opacity, footer, title=f"{ctx.image_name}: certified top-{mr.k}"),
           extra_png=("PNG radius vs β", lambda: P.curves_png(curve_series, "β", f"certified radius ({unit_label})",
                                                               "Certified radius versus β", reverse_x=True,
                                                               footer=footer), "beta_curve"),
           csv=S.to_csv(rows, header=header),
           json_text=S.to_json("certify", {**ui.settings_dict(settings), "norm": norm_name, "eta": cr.eta,
                                           "radius_drawn": radius, "region_certificate": kind},
                               {"certificates": rows, "cells": cell_rows, "k": mr.k, "n": mr.n, "dim": mr.dim,
                                "verdict": verdict.text, "elapsed_s": mr.elapsed + cr.elapsed,
                                "device": mr.device, "samples_used": mr.samples_used},
                               ctx.provenance()))
