"""Certify: which top cells of the RRS map are guaranteed to stay, and up to what change."""
import numpy as np
import streamlit as st

from rrs import plots as P
from rrs.methods import RAW_METHODS
from rrs.settings import L2, CertifySettings, MapSettings
from ui import caching, export, sidebar, state
from ui import widgets as W
from ui.compute import CERTIFY_BETAS, format_radius

ctx = sidebar.page("Certify", "A **certificate** is a mathematical guarantee: for *every* change of the image "
                   "up to a size L, the top cells of the RRS map stay in the top-k. It holds for the map "
                   "expected over the noise; the **finite-sample** value also accounts for having only T "
                   "samples and holds with probability 1 − η, while the **plug-in** value treats the "
                   "T-sample map as exact (an estimate, not a guarantee).")

# ------------------------------------------------------------------------------ controls
c1, c2, c3, c4 = st.columns([1.4, 1.4, 1.2, 0.8])
base = W.method_select(c1, "Base attribution", "certify_base", "vanilla", options=RAW_METHODS,
                       help="The map RRS smooths and certifies.")
cell = W.cell_slider(ctx, c2, "certify_cell", 32, disabled=base == "gradcam",
                     help="Coarse cells give far stronger certificates: fewer cells compete for the top-k.")
k = W.k_slider(c3, "certify_k", 10.0)
seed = W.seed_input(c4, "certify_seed")

c5, c6, c7 = st.columns([2.4, 1.2, 1.2])
sigma = W.sigma_slider(ctx, c5, "certify_sigma", 0.25)
samples = state.widget(c6.number_input, "Certification samples T", "certify_samples", 1024, min_value=16,
                       max_value=1_000_000, step=256,
                       help="Noise draws used to estimate the map and its confidence intervals. Hundreds to "
                            "thousands; more samples = tighter finite-sample certificate.")
eta = state.widget(c7.select_slider, "Failure probability η", "certify_eta", 0.05,
                   options=[0.001, 0.01, 0.05, 0.1, 0.2],
                   help="The finite-sample certificate holds with probability at least 1 − η over the sampling.")
with st.expander("RRS scoring vector and noise type"):
    s1, s2, s3 = st.columns([1.2, 1.6, 1])
    scoring, scoring_param = W.scoring_controls(
        s1, s2, "certify", help="Top-k′ uniform scores allow exact (Clopper–Pearson) intervals: the strongest "
                                "finite-sample certificates.")
    noise = W.noise_radio(s3, "certify_noise", help="The Gaussian-CDF certificate exists only for Gaussian noise.")

settings = W.settings_or_stop(lambda: MapSettings(
    method="rrs", base=base, noise=noise, sigma=sigma, samples=int(samples), cell=cell, k=k, scoring=scoring,
    scoring_param=scoring_param, seed=seed))
run_key = (ctx.model_key, ctx.image_digest, ctx.size, settings)
if not state.run_gate("certify", run_key, "Certify", "Draw the T noise samples and compute every certificate."):
    st.info(f"Press **Certify** to draw {int(samples):,} noise samples and compute the certificates. "
            "Progress is shown while it runs; changing a setting cancels it.", icon=":material/info:")
    st.stop()

mr = W.run(f"Drawing {int(samples):,} noise samples for the RRS map", caching.map_result, ctx, settings)
if mr is None:
    st.stop()
state.mark_done("certify", run_key)
if mr.message:
    st.warning(mr.message, icon=":material/warning:")

# --------------------------------------------------------------------------- view controls
v1, v2, v3, v4 = st.columns([1.4, 2.2, 1.4, 1.2])
norm = W.norm_radio(v1, "Threat norm", "certify_norm", L2,
                    help="How the size of a change is measured: ℓ2 = overall energy, ℓ∞ = largest change "
                         "of any single value, ℓ1 = total change.")
try:
    cr = caching.certificate(ctx, mr, CertifySettings(norm=norm, eta=float(eta), betas=CERTIFY_BETAS))
except ValueError as e:
    st.error(str(e), icon=":material/error:")
    st.stop()
kind = state.widget(v3.selectbox, "Certificate for the region", "certify_kind", "best",
                    options=["best", "rdp", "cdf"] if cr.cdf_plugin is not None else ["rdp"],
                    format_func={"best": "Best of RDP and Gaussian-CDF", "rdp": "RDP (exact)",
                                 "cdf": "Gaussian-CDF"}.get,
                    help="Both certificates are sound; a cell certified by either is guaranteed.")
beta = state.widget(v4.select_slider, "β (share that must stay)", "certify_beta", 1.0,
                    options=list(cr.report.betas), format_func=lambda b: f"{b:.0%}",
                    help="β = 1: every top-k cell must stay; β = 0.8: at least 80% of them.")

radii_plug = cr.cell_radii(kind, finite=False)
radii_fin = cr.cell_radii(kind, finite=True)
top_radius = float(max(radii_plug.max(), radii_fin.max()))
unit_scale = 255.0 if norm.is_inf else 1.0          # ℓ∞ radii are shown in 1/255 steps
fallback = {1.0: 1.0, 2.0: 0.05}.get(norm.p, 1 / 255)
slider_max = float(f"{max(top_radius * 1.25, fallback * 0.2) * unit_scale:.2g}")
slider_max = slider_max if slider_max > 0 else fallback * unit_scale
radius_shown = state.widget(
    v2.slider, "Radius L to draw" + (" (in 1/255 steps)" if norm.is_inf else " (pixel units)"),
    f"certify_radius_{norm.key}", slider_max / 5, min_value=0.0, max_value=slider_max,
    step=slider_max / 100, format="%.3g",
    help="The region shows the top cells guaranteed to stay for every change of at most this size.")
radius = radius_shown / unit_scale
v2.caption(format_radius(radius, norm, mr.dim))

# ------------------------------------------------------------------------------- verdict
verdict = cr.verdict(float(beta), W.cells_options(ctx.size))
box = {"ok": st.success, "tiny": st.warning, "vacuous": st.warning}[verdict.level]
box(verdict.text, icon={"ok": ":material/verified:", "tiny": ":material/info:",
                        "vacuous": ":material/block:"}[verdict.level])
if verdict.suggestions:
    bcols = st.columns(len(verdict.suggestions))
    for col, (text, updates) in zip(bcols, verdict.suggestions):
        col.button(text, key=f"certify_try_{'_'.join(updates)}", on_click=state.request_run,
                   args=("certify", updates), width="stretch")

# ------------------------------------------------------------------------------- numbers
fin_best = max(cr.radius("rdp_finite", beta), cr.radius("cdf_finite", beta))
plug_best = max(cr.radius("rdp_plugin", beta), cr.radius("cdf_plugin", beta))
cert_plug = int((cr.categories(radius, kind, False) == 2).sum())
cert_fin = int((cr.categories(radius, kind, True) == 2).sum())
unit_note = "1/255 (ℓ∞)" if norm.is_inf else cr.unit
m = st.columns(5)
W.metric(m[0], "Guaranteed radius", f"{fin_best * unit_scale:.3g}",
         f"{unit_note}; plug-in estimate {plug_best * unit_scale:.3g}",
         help=f"Finite-sample certificate at β = {beta:.0%} (best of RDP and Gaussian-CDF): holds with probability "
              f"≥ {1 - cr.eta:.0%}. The plug-in value treats the sampled map as exact (not a guarantee).")
W.metric(m[1], "RDP exact", f"{cr.radius('rdp_finite', beta) * unit_scale:.3g}",
         f"plug-in {cr.radius('rdp_plugin', beta) * unit_scale:.3g}",
         help="Rényi-DP certificate with the exact minimal divergence: finite-sample radius (plug-in below).")
if cr.cdf_plugin is not None:
    W.metric(m[2], "Gaussian-CDF", f"{cr.radius('cdf_finite', beta) * unit_scale:.3g}",
             f"plug-in {cr.radius('cdf_plugin', beta) * unit_scale:.3g}",
             help="Per-cell Gaussian-CDF certificate (Salman et al. 2019): finite-sample radius (plug-in below).")
else:
    W.metric(m[2], "Gaussian-CDF", "n/a", "needs Gaussian noise")
W.metric(m[3], "Cells certified at L", f"{cert_fin} of {mr.k}", f"plug-in {cert_plug} of {mr.k}",
         help="Top cells guaranteed (finite-sample) to stay in the top-k at the radius drawn below.")
W.metric(m[4], "Time", f"{mr.elapsed + cr.elapsed:.1f} s", f"{mr.samples_used:,} samples on {mr.device}")

# ------------------------------------------------------------------------------- figures
opacity = W.opacity_slider("certify_opacity", 0.55)
cat_plug = cr.categories(radius, kind, finite=False)
cat_fin = cr.categories(radius, kind, finite=True)
L_text = format_radius(radius, norm, mr.dim)
left, right = st.columns(2, gap="medium")
with left:
    W.figure(P.region_figure(ctx.picture, cat_plug, mr.pixel_cell, opacity, title="Plug-in (estimate)"),
             "certify_region_plug", f"Blue cells stay in the top-k for any change of size at most {L_text}, "
                                    "if the sampled map were exact; orange = top-k but not certified.")
with right:
    W.figure(P.region_figure(ctx.picture, cat_fin, mr.pixel_cell, opacity,
                             title=f"Finite-sample (probability ≥ {1 - cr.eta:.0%})"),
             "certify_region_fin", f"Blue cells are guaranteed to stay in the top-k for any change of size at "
                                   f"most {L_text}; orange = top-k but not certified.")

grid_plug = cr.radius_grid(kind, finite=False) * unit_scale
grid_fin = cr.radius_grid(kind, finite=True) * unit_scale
shared = float(np.nanmax(np.concatenate([grid_plug.ravel(), grid_fin.ravel(), [0.0]]))) or 1.0
unit_label = "1/255, ℓ∞" if norm.is_inf else cr.unit
left, right = st.columns(2, gap="medium")
with left:
    W.figure(P.radius_figure(ctx.picture, grid_plug, mr.pixel_cell, 0.8, zmax=shared, unit=unit_label,
                             title="Per-cell radius, plug-in"), "certify_radii_plug",
             "Brighter = the cell stays in the top-k under larger changes (estimate); other cells not drawn.")
with right:
    W.figure(P.radius_figure(ctx.picture, grid_fin, mr.pixel_cell, 0.8, zmax=shared, unit=unit_label,
                             title="Per-cell radius, finite-sample"), "certify_radii_fin",
             "Brighter = the cell is guaranteed to stay in the top-k under larger changes; same colour scale.")

curves = cr.curves()
for c in curves:
    c["radius"] = [r * unit_scale for r in c["radius"]]
left, right = st.columns([1.6, 1], gap="medium")
with left:
    W.figure(P.beta_curve_figure(curves, title="Certified radius versus β", unit=unit_label), "certify_beta_curve",
             "Higher = stronger guarantee; asking that fewer top cells stay (smaller β) allows larger changes. "
             "Dashed: the equal-level form, shown for comparison only — not a certificate for β<1.")
with right:
    table = [{"certificate": c["name"].replace(" — not a certificate for β<1", " (not a certificate for β<1)"),
              f"radius at β = {beta:.0%}": f"{cr.radius(c['group'], beta) * unit_scale:.4g}"} for c in curves]
    st.table(table)
    st.caption(f"Radii in {unit_label}. η = {cr.eta:g}; k = {mr.k} of {mr.n} cells; "
               f"dimension N = {mr.dim:,} input values.")
used = mr.settings
W.provenance(ctx, mr.elapsed + cr.elapsed, mr.device, used.seed,
             f"{used.describe()}, η = {cr.eta:g}, norm {norm.label}")

# -------------------------------------------------------------------------------- export
footer = f"{used.describe()} · η={cr.eta:g} · {norm.label} · L={L_text} · image {ctx.image_name} ({ctx.image_digest})"
panels = [{"title": "certified region, plug-in", "categories": cat_plug},
          {"title": f"certified region, finite-sample (1-η={1 - cr.eta:g})", "categories": cat_fin},
          {"title": f"per-cell radius, plug-in ({unit_label})", "radii": grid_plug, "zmax": shared},
          {"title": f"per-cell radius, finite-sample ({unit_label})", "radii": grid_fin, "zmax": shared}]
curve_series = [{"name": c["name"], "x": c["beta"], "y": c["radius"], "dash": c["dash"], "color": c["color"]}
                for c in curves]
view = {"radius_drawn": radius, "region_certificate": kind}
header = {"settings": used, "certify": cr.settings, **view, "provenance": ctx.provenance()}
rows = cr.rows()
cell_rows = [{"cell": int(i), "row": int(i) // mr.grid[1], "col": int(i) % mr.grid[1],
              "map_value": float(mr.map.ravel()[i]),
              "radius_plugin": float(radii_plug[i]), "radius_finite": float(radii_fin[i]),
              "rdp_radius_finite": float(cr.cell_radii("rdp", True)[i])} for i in cr.report.selected]
W.exports(f"rrs_certify_{ctx.image_name}", "certify_export",
          png=W.maps_png(ctx, panels, mr.pixel_cell, opacity, footer, title=f"{ctx.image_name}: certified top-{mr.k}"),
          extra_png=("PNG radius vs β", lambda: P.curves_png(curve_series, "β", f"certified radius ({unit_label})",
                                                              "Certified radius versus β", reverse_x=True,
                                                              footer=footer), "beta_curve"),
          csv=export.to_csv(rows, header=header),
          json_text=export.to_json("certify", {"map": used, "certify": cr.settings, **view},
                                   {"certificates": rows, "cells": cell_rows, "k": mr.k, "n": mr.n, "dim": mr.dim,
                                    "verdict": verdict.text, "elapsed_s": mr.elapsed + cr.elapsed,
                                    "device": mr.device, "samples_used": mr.samples_used},
                                   ctx.provenance()))
