"""Learn: a guided walkthrough for a class, one button per step, on the current image.

Every sentence under a figure is computed from the numbers the figure shows
(:mod:`ui.story`); the presenter layout shows one step per screen, figures first, in large
type, for a projector.
"""
import streamlit as st

from ui import plots as P
from rrs.figures import topk_mask
from rrs.methods import METHODS
from rrs.settings import AttackSettings, CertifySettings, MapSettings
from ui import caching, runs, sidebar, state, story
from ui import widgets as W
from ui.compute import CERTIFY_BETAS, as_array, working_image

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
STEPS = 6

presenter = state.widget(st.toggle, "Presenter layout (large type, one step per screen)", "learn_presenter", False,
                         help="For a projector: one step at a time, figure first, readable from the back of "
                              "the room. Previous / Next move between steps.")
FIG_H = 330 if presenter else 380
if presenter:
    st.markdown("""<style>
    [data-testid="stMain"] [data-testid="stMarkdownContainer"] p { font-size: 1.35rem; line-height: 1.45; }
    [data-testid="stMain"] h3 { font-size: 2.1rem; }
    [data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 1.1rem; }
    </style>""", unsafe_allow_html=True)


def _done(i: int) -> bool:
    return bool(st.session_state.get(f"learn.done{i}"))


def step(i: int, title: str, text: str, words: list[tuple[str, str]], button: str, predicted: float | None = None):
    """Draw a step's heading and button (its text too, before the figure in the normal layout);
    return True when its result should be shown."""
    if runs.stopped(f"learn{i}"):
        st.session_state[f"learn.done{i}"] = False
    st.subheader(f"{i}. {title}")
    if not presenter:
        st.markdown(text)
        if words:
            st.caption("  \n".join(f"**{w}** — {d}" for w, d in words))
    b, note = st.columns([1.6, 2]) if predicted is not None else (st.container(), None)
    if b.button(button, key=f"learn_run{i}", type="primary" if not _done(i) else "secondary",
                icon=":material/play_arrow:"):
        st.session_state[f"learn.done{i}"] = True
    if note is not None and not _done(i):
        note.caption(f"{story.predicted_text(predicted)}")
    return _done(i)


def after(i: int, text: str, words: list[tuple[str, str]]) -> None:
    """In the presenter layout the step's explanation comes after its figure."""
    if presenter:
        with st.expander("What this step is about", expanded=not _done(i)):
            st.markdown(text)
            st.caption("  \n".join(f"**{w}** — {d}" for w, d in words))


def say(text: str) -> None:
    """The step's finding, computed from the numbers in its figure."""
    st.markdown(f":material/lightbulb: {text}")


def _map(i: int, settings):
    with runs.stoppable(f"learn{i}"):
        return runs.run("Computing the map", caching.map_result, ctx, settings,
                        predicted=story.predict_map(ctx.model, ctx.x, settings)).value


def _attack(i: int, settings):
    with runs.stoppable(f"learn{i}"):
        return runs.run(f"Attacking the {METHODS[settings.method].label} map", caching.attack, ctx, settings,
                        ATTACK, predicted=story.predict_attack(ctx.model, ctx.x, settings, ATTACK)).value


# ---------------------------------------------------------------------------------- steps

def step1():
    text = ("A neural network turns the picture into a guess of what it shows, with a confidence for each "
            "possible answer. Here is what it says about the current image.")
    words = [("Neural network", "a program that learned from many labelled pictures to name what is in one.")]
    if step(1, "The model looks at a picture", text, words, "Ask the model"):
        preds = caching.predictions(ctx)
        a, b = st.columns([1, 1.4])
        a.image(ctx.picture, caption=f"{ctx.image_name}, as the model sees it", width="stretch")
        with b:
            W.figure(P.prediction_figure(preds), "learn_fig1", "The longer the bar, the more sure the model is.")
        (_, top, p), (_, second, p2) = preds[0], preds[1]
        say(f"The model says **{top}** with {p:.0%} confidence; its second guess, {second}, gets {p2:.0%}.")
    after(1, text, words)


def step2():
    text = ("An **interpretation map** colours each part of the picture by how much it mattered for the answer. "
            "The simplest one asks: if this patch changed a little, how much would the model's score change?")
    words = [("Gradient", "how fast the model's score changes when a pixel changes a little."),
             ("Top-k cells", f"the k most important patches ({CELL}×{CELL} pixels each) — outlined in orange.")]
    if step(2, "Where did it look?", text, words, "Draw the map", story.predict_map(ctx.model, ctx.x, MAP)):
        r = _map(2, MAP)
        if r is not None:
            W.figure(P.map_figure(ctx.picture, r.map, r.pixel_cell, 0.6, topk_mask=r.topk_mask(), height=FIG_H,
                                  title="Vanilla gradient map"), "learn_fig2",
                     "Bright = where the model looked; orange outline = the most important patches.")
            share = float(r.map[r.topk_mask()].sum() / max(r.map.sum(), 1e-12))
            say(f"The **{r.k} outlined patches** (of {r.n}) are what the map says mattered most for "
                f"**{r.label}**; together they hold {share:.0%} of the map's total importance.")
    after(2, text, words)


def step3():
    budget = f"{ATTACK.epsilon * 255:.0f}/255"
    text = (f"An **interpretation attack** changes every pixel by at most {budget} — invisible to us — so that "
            "the model still gives the same answer but the map points somewhere else. If a map can be moved "
            "this easily, can we trust it?")
    words = [(f"Budget {budget}", f"no pixel value changes by more than {ATTACK.epsilon * 255:.0f} steps out of 255."),
             ("Top-k intersection", "the share of the important patches still important after the change "
                                    "(1 = all stayed, 0 = none).")]
    if step(3, "A tiny change moves the map", text, words, "Attack the map",
            story.predict_attack(ctx.model, ctx.x, MAP, ATTACK)):
        res = _attack(3, MAP)
        if res is not None:
            r = res.result
            clean, attacked = as_array(r.clean_map), as_array(r.attacked_map)
            zmax = P.display_scale(clean, attacked)
            a, b = st.columns(2)
            with a:
                W.figure(P.map_figure(ctx.picture, clean, res.pixel_cell, 0.6, zmax=zmax,
                                      topk_mask=topk_mask(clean, res.k), title=f"Before: {res.clean_name}",
                                      height=FIG_H - 40), "learn_fig3a", "The map of the original picture.")
            with b:
                W.figure(P.map_figure(working_image(r.x_adv), attacked, res.pixel_cell, 0.6, zmax=zmax,
                                      topk_mask=topk_mask(attacked, res.k), title=f"After: {res.adv_name}",
                                      height=FIG_H - 40), "learn_fig3b",
                         "The map after the invisible change, on the same colour scale.")
            W.metric(st, "Top-k intersection", f"{r.topk_intersection:.2f}", f"{r.topk_intersection - 1:+.2f} vs 1.00 "
                     "without attack", good_up=True, help="Top-k intersection: the share of the important "
                                                          "patches still important after the change.")
            same = "still says" if r.label_preserved else "now says"
            say(f"After a change of at most {r.linf * 255:.1f}/255 per value the model {same} **{res.adv_name}** "
                f"({r.adv_confidence:.0%}), but only **{r.topk_intersection:.0%}** of the {res.k} important "
                "patches are still important.")
    after(3, text, words)


def step4():
    text = (f"Instead of one map, compute maps of {T} noisy copies of the picture and combine them. **RRS** "
            "(Rényi-Robust-Smooth) gives each patch a score by its *rank* in every noisy map and averages the "
            "scores, so one copy alone cannot change much.")
    words = [(f"Noise σ = {SMOOTH.sigma:g}", f"random changes of about {SMOOTH.sigma * 255:.0f}/255 added to every "
                                             "pixel value."),
             ("Rank", "a patch's place in the order of importance: 1st, 2nd, 3rd, …")]
    if step(4, "Smoothing: average over noisy copies", text, words, "Smooth the map",
            story.predict_map(ctx.model, ctx.x, SMOOTH)):
        r = _map(4, SMOOTH)
        if r is not None:
            a, b = st.columns([0.8, 1.5])
            a.image(caching.noise_preview(ctx, SMOOTH.sigma), caption=f"one noisy copy (σ = {SMOOTH.sigma:g})",
                    width="stretch")
            with b:
                W.figure(P.map_figure(ctx.picture, r.map, r.pixel_cell, 0.6, topk_mask=r.topk_mask(), height=FIG_H,
                                      title=f"RRS map from {r.samples_used} noisy copies"), "learn_fig4",
                         "Bright = important on average over the noisy copies; orange = top-k patches.")
            agree = r.raw_agreement()
            say(f"The RRS map from {r.samples_used} noisy copies shares **{agree:.0%}** of its {r.k} most "
                "important patches with the plain gradient map of step 2.")
    after(4, text, words)


def step5():
    text = ("Now the same attack against the RRS map. The attacker must fool the map for *all* noisy copies at "
            "once. We also run the smoothed map twice with different noise: even without an attack the two "
            "runs differ a little — that is the **floor** the attacked value should be compared with.")
    words = [("No-attack floor", "how much two honest runs with different noise agree.")]
    predicted = story.predict_attack(ctx.model, ctx.x, SMOOTH, ATTACK)
    if step(5, "Does smoothing resist the attack?", text, words, "Attack the smoothed map", predicted):
        res, plain = _attack(5, SMOOTH), _attack(5.1, MAP)
        if res is not None and plain is not None:
            rows = [plain.row(), res.row()]
            W.figure(P.bars_figure([METHODS[r["method_id"]].short for r in rows],
                                   [{"name": "no-attack floor", "values": [r["no_attack_floor"] for r in rows],
                                     "color": P.PALETTE[5]},
                                    {"name": "under attack", "values": [r["attacked_topk_intersection"] for r in rows],
                                     "color": P.PALETTE[3]}], height=FIG_H - 40), "learn_fig5",
                     "Higher = steadier. Compare each method's attacked bar with its own floor.")
            say(story.attack_takeaway(rows).replace("What this shows: ", ""))
    after(5, text, words)


def step6():
    text = ("Because RRS averages ranks over random noise, maths from *differential privacy* can prove that some "
            "patches stay among the most important for **every** change up to a certain size — not just for "
            "the attacks we tried. Blue patches below carry that guarantee.")
    words = [("Certified radius", "the largest change (measured in ℓ2, the overall size of the change) for which "
                                  "the guarantee holds."),
             ("Plug-in estimate", "treats the sampled map as exact — an estimate, not yet a guarantee.")]
    if step(6, "A guarantee: the certificate", text, words, "Compute the guarantee",
            story.predict_map(ctx.model, ctx.x, CERT)):
        r = _map(6, CERT)
        if r is not None:
            cr = caching.certificate(ctx, r, CERTIFY)
            told = story.certificate_story(cr)
            W.figure(P.region_figure(ctx.picture, told["categories"], r.pixel_cell, 0.55, title=told["title"],
                                     height=FIG_H), "learn_fig6", told["caption"])
            say(told["text"])
            st.caption(f"{r.samples_used} noisy copies, {r.pixel_cell}-px patches, σ = {CERT.sigma:g}. The Certify "
                       "page shows every certificate, for the whole set of patches and for each patch.")
    after(6, text, words)


SHOW = [step1, step2, step3, step4, step5, step6]
if presenter:
    current = int(st.session_state.get("learn.slide", 1))
    SHOW[current - 1]()
    prev_col, mid, next_col = st.columns([1, 2, 1])
    prev_col.button("Previous", key="learn_prev", disabled=current <= 1, icon=":material/arrow_back:",
                    on_click=lambda: st.session_state.update({"learn.slide": current - 1}), width="stretch")
    mid.caption(f"Step {current} of {STEPS}")
    next_col.button("Next", key="learn_next", disabled=current >= STEPS, icon=":material/arrow_forward:",
                    on_click=lambda: st.session_state.update({"learn.slide": current + 1}), width="stretch")
else:
    for show in SHOW:
        show()
