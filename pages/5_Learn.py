"""Learn: a guided walkthrough for a class, one button per step, on the current image."""
import streamlit as st

from rrs import plots as P
from rrs.methods import METHODS
from rrs.settings import AttackSettings, CertifySettings, MapSettings
from ui import caching, sidebar
from ui import widgets as W
from ui.compute import CERTIFY_BETAS, as_array, topk_mask, working_image

ctx = sidebar.page("Learn", "Six short steps, each with a button that runs it on the image chosen in the sidebar. "
              "No background needed: every technical word is explained in one line.")

fast = ctx.fast
CELL = 16
T = 8 if fast else 16
CERT_T = 256 if fast else 512
MAP = MapSettings(method="vanilla", cell=CELL, k=0.1, samples=T, sigma=0.15, seed=0)
SMOOTH = MAP.replace(method="rrs")
ATTACK = AttackSettings(objective="topk", norm="linf", epsilon=4 / 255, steps=4 if fast else 8, eot=2, seed=0)
CERT = MapSettings(method="rrs", cell=max(W.cells_options(ctx.size)), k=0.1, samples=CERT_T, sigma=0.25, seed=0)
CERTIFY = CertifySettings(norm="l2", eta=0.05, betas=CERTIFY_BETAS)


def _done(i: int) -> bool:
    return bool(st.session_state.get(f"learn.done{i}"))


def step(i: int, title: str, text: str, words: list[tuple[str, str]], button: str):
    """Draw a step's text; return True when its result should be shown."""
    st.subheader(f"{i}. {title}")
    st.markdown(text)
    if words:
        st.caption("  \n".join(f"**{w}** — {d}" for w, d in words))
    if st.button(button, key=f"learn_run{i}", type="primary" if not _done(i) else "secondary",
                 icon=":material/play_arrow:"):
        st.session_state[f"learn.done{i}"] = True
    return _done(i)


def _map(settings):
    return W.run("Computing the map", caching.map_result, ctx, settings)


def _attack(settings):
    return W.run(f"Attacking the {METHODS[settings.method].label} map", caching.attack, ctx, settings, ATTACK)


# ---------------------------------------------------------------------------------- 1
if step(1, "The model looks at a picture",
        "A neural network turns the picture into a guess of what it shows, with a confidence for each "
        "possible answer. Here is what it says about the current image.",
        [("Neural network", "a program that learned from many labelled pictures to name what is in one.")],
        "Ask the model"):
    preds = caching.predictions(ctx)
    a, b = st.columns([1, 1.4])
    a.image(ctx.picture, caption=f"{ctx.image_name}, as the model sees it", width=260)
    with b:
        W.figure(P.prediction_figure(preds), "learn_fig1", "The longer the bar, the more sure the model is.")

# ---------------------------------------------------------------------------------- 2
if step(2, "Where did it look?",
        "An **interpretation map** colours each part of the picture by how much it mattered for the answer. "
        "The simplest one asks: if this patch changed a little, how much would the model's score change?",
        [("Gradient", "how fast the model's score changes when a pixel changes a little."),
         ("Top-k cells", f"the k most important patches ({CELL}×{CELL} pixels each) — outlined in orange.")],
        "Draw the map"):
    r = _map(MAP)
    if r is not None:
        a, b = st.columns([1.4, 1])
        with a:
            W.figure(P.map_figure(ctx.picture, r.map, r.pixel_cell, 0.6, topk_mask=r.topk_mask(), height=400,
                                   title="Vanilla gradient map"), "learn_fig2",
                      "Bright = where the model looked; orange outline = the most important patches.")
        b.info(f"The {r.k} outlined patches are what the map says mattered most for "
               f"**{r.label}**. The next step shows how easily this can be changed.", icon=":material/lightbulb:")

# ---------------------------------------------------------------------------------- 3
if step(3, "A tiny change moves the map",
        "An **interpretation attack** changes every pixel by at most 4/255 — invisible to us — so that the model "
        "still gives the same answer but the map points somewhere else. If a map can be moved this easily, "
        "can we trust it?",
        [("Budget 4/255", "no pixel value changes by more than 4 steps out of 255."),
         ("Top-k intersection", "the share of the important patches still important after the change "
                                "(1 = all stayed, 0 = none).")],
        "Attack the map"):
    res = _attack(MAP)
    if res is not None:
        r = res.result
        clean, attacked = as_array(r.clean_map), as_array(r.attacked_map)
        zmax = P.display_scale(clean, attacked)
        a, b = st.columns(2)
        with a:
            W.figure(P.map_figure(ctx.picture, clean, res.pixel_cell, 0.6, zmax=zmax, topk_mask=topk_mask(clean, res.k),
                                   title=f"Before: {res.clean_name}", height=340), "learn_fig3a",
                      "The map of the original picture.")
        with b:
            W.figure(P.map_figure(working_image(r.x_adv), attacked, res.pixel_cell, 0.6, zmax=zmax,
                                   topk_mask=topk_mask(attacked, res.k), title=f"After: {res.adv_name}",
                                   height=340), "learn_fig3b",
                      "The map after the invisible change — same answer, different map.")
        W.metric(st, "Important patches that stayed (top-k intersection)", f"{r.topk_intersection:.2f}",
                  f"{r.topk_intersection - 1:+.2f} vs 1.00 without attack", good_up=True)

# ---------------------------------------------------------------------------------- 4
if step(4, "Smoothing: average over noisy copies",
        f"Instead of one map, compute maps of {T} noisy copies of the picture and combine them. **RRS** "
        "(Rényi-Robust-Smooth) gives each patch a score by its *rank* in every noisy map and averages the "
        "scores, so one copy alone cannot change much.",
        [("Noise σ = 0.15", "random changes of about 38/255 added to every pixel value."),
         ("Rank", "a patch's place in the order of importance: 1st, 2nd, 3rd, …")],
        "Smooth the map"):
    r = _map(SMOOTH)
    if r is not None:
        a, b, _ = st.columns([0.8, 1.5, 0.3])
        a.image(caching.noise_preview(ctx, SMOOTH.sigma), caption="one noisy copy (σ = 0.15)", width="stretch")
        with b:
            W.figure(P.map_figure(ctx.picture, r.map, r.pixel_cell, 0.6, topk_mask=r.topk_mask(), height=380,
                                   title=f"RRS map from {T} noisy copies"), "learn_fig4",
                      "Bright = important on average over the noisy copies; orange = top-k patches.")

# ---------------------------------------------------------------------------------- 5
if step(5, "Does smoothing resist the attack?",
        "Now the same attack against the RRS map. The attacker must fool the map for *all* noisy copies at "
        "once. We also run the smoothed map twice with different noise: even without an attack the two "
        "runs differ a little — that is the **floor** the attacked value should be compared with. With few "
        "noisy copies and fine patches the smoothed map is itself unsteady, so the outcome depends on the "
        "settings — which is exactly why the next step, a guarantee, matters.",
        [("No-attack floor", "how much two honest runs with different noise agree.")],
        "Attack the smoothed map"):
    res = _attack(SMOOTH)
    plain = _attack(MAP)
    if res is not None and plain is not None:
        rows = [plain.row(), res.row()]
        a, b = st.columns([1.4, 1])
        with a:
            W.figure(P.bars_figure([r["method"] for r in rows],
                                    [{"name": "no-attack floor", "values": [r["no_attack_floor"] for r in rows],
                                      "color": P.PALETTE[5]},
                                     {"name": "under attack",
                                      "values": [r["attacked_topk_intersection"] for r in rows],
                                      "color": P.PALETTE[3]}]), "learn_fig5",
                      "Higher = steadier. Compare each method's attacked bar with its own floor.")
        for r in rows:
            W.metric(b, r["method"], f"{r['attacked_topk_intersection']:.2f}",
                      f"{r['attacked_topk_intersection'] - r['no_attack_floor']:+.2f} vs its floor "
                      f"{r['no_attack_floor']:.2f}", good_up=True)
        kept_plain, kept_rrs = rows[0]["attacked_topk_intersection"], rows[1]["attacked_topk_intersection"]
        verdict = ("kept more of its important patches than" if kept_rrs > kept_plain + 1e-9 else
                   "kept as many of its important patches as" if abs(kept_rrs - kept_plain) < 1e-9 else
                   "kept fewer of its important patches than")
        b.caption(f"Here the RRS map {verdict} the plain gradient map. Try the Attack page with more noise "
                  "samples or coarser patches to see how that changes.")

# ---------------------------------------------------------------------------------- 6
if step(6, "A guarantee: the certificate",
        "Because RRS averages ranks over random noise, maths from *differential privacy* can prove that some "
        "patches stay among the most important for **every** change up to a certain size — not just for "
        "the attacks we tried. Blue patches below carry that guarantee.",
        [("Certified radius", "the largest change (measured in ℓ2, the overall size of the change) for which "
                              "the guarantee holds."),
         ("Plug-in", "treats the sampled map as exact — an estimate, not yet a guarantee.")],
        "Compute the guarantee"):
    r = W.run(f"Drawing {CERT_T} noise samples", caching.map_result, ctx, CERT)
    if r is not None:
        cr = caching.certificate(ctx, r, CERTIFY)
        radii = cr.cell_radii("best", finite=False)
        shown = float(sorted(radii[cr.report.selected])[len(cr.report.selected) // 2]) * 0.9
        a, b = st.columns([1.2, 1])
        with a:
            W.figure(P.region_figure(ctx.picture, cr.categories(shown, "best", finite=False), r.pixel_cell, 0.55,
                                      title=f"Certified at ℓ2 radius {shown:.3f} (plug-in)", height=400),
                      "learn_fig6", "Blue = guaranteed to stay important for any change up to this size "
                                    "(estimate); orange = important but not guaranteed.")
        with b:
            verdict = cr.verdict(1.0)
            st.markdown(verdict.text.replace("What would help:", "").replace("What would make it larger:", ""))
            st.caption(f"{CERT_T} noisy copies, {r.pixel_cell}-px patches, σ = {CERT.sigma}. The finite-sample "
                       "guarantee needs many more copies — try the Certify page.")
        W.provenance(ctx, r.elapsed + cr.elapsed, r.device, CERT.seed, r.settings.describe())
