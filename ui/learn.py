"""The Learn page's seven steps: each a heading, a button, a figure and one finding computed
from the numbers the figure shows (:mod:`ui.story`). The presenter layout shows one step per
screen, figure first, in large type, for a projector.

The page (``pages/5_Learn.py``) sets up a :class:`Lesson` and calls its steps in order.
"""
from __future__ import annotations

import time

import numpy as np
import streamlit as st

from rrs.figures import topk_mask
from rrs.methods import METHODS
from rrs.settings import AttackSettings, CertifySettings, MapSettings
from rrs.workflows import advice as WA

from . import caching, jobs, predict, runs, state, story
from . import plots as P
from . import widgets as W
from .compute import CERTIFY_BETAS, as_array, working_image

__all__ = ["STEPS", "Lesson", "PRESENTER_CSS"]

STEPS = 7
#: Larger type for a projector (the presenter layout).
PRESENTER_CSS = """<style>
    [data-testid="stMain"] [data-testid="stMarkdownContainer"] p { font-size: 1.35rem; line-height: 1.45; }
    [data-testid="stMain"] h3 { font-size: 2.1rem; }
    [data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 1.1rem; }
    </style>"""


def _pair(settings: tuple) -> tuple:
    """``((raw, smoothed), robustness settings)`` from :func:`rrs.workflows.advice.attack_settings`."""
    raw, smoothed, rs = settings
    return (raw, smoothed), rs


class Lesson:
    """The steps on the page's image: the settings of every step (fast or full), the layout
    (presenter or not) and what each step has shown."""

    CELL = 16

    def __init__(self, ctx, presenter: bool):
        self.ctx, self.presenter = ctx, presenter
        fast = ctx.fast
        self.T = 8 if fast else 16
        self.MAP = MapSettings(method="vanilla", cell=self.CELL, k=0.1, samples=self.T, sigma=0.15, seed=0)
        self.SMOOTH = self.MAP.replace(method="rrs")
        self.ATTACK = AttackSettings(objective="topk", norm="linf", epsilon=4 / 255, steps=4 if fast else 8, eot=2,
                                     seed=0)
        self.CERT = MapSettings(method="rrs", cell=max(W.cells_options(ctx.size)), k=0.1,
                                samples=256 if fast else 512, sigma=0.25, seed=0)
        self.CERTIFY = CertifySettings(norm="l2", eta=0.05, betas=CERTIFY_BETAS)
        self.FIG_H = 330 if presenter else 380
        self._finding = None
        self.steps = [self.step1, self.step2, self.step3, self.step4, self.step5, self.step6,
                      self.step7]
        with runs.measuring():      # what every step's prediction reads, under a spinner on a first visit
            for settings in (self.MAP, self.SMOOTH):
                predict.predict_map(ctx.model, ctx.x, settings)
                predict.predict_attack(ctx.model, ctx.x, settings, self.ATTACK)

    def _held(self, kind: str, *settings) -> bool:
        return caching.held(self.ctx, kind, *settings)

    def _guarantee_held(self) -> bool:
        """Step 6's map and certificate are in the server's cache."""
        return self._held("map", self.CERT) and self._held("certificate", self.CERT, self.CERTIFY)

    def _guarantee_seconds(self) -> float:
        """Seconds to compute step 6's map and certificate."""
        return (predict.predict_map(self.ctx.model, self.ctx.x, self.CERT)
                + predict.predict_certificate(self.ctx.model, self.ctx.x, self.CERT))

    def _done(self, i: int) -> bool:
        return bool(st.session_state.get(f"learn.done{i}"))

    def step(self, i: int, title: str, text: str, words: list[tuple[str, str]], button: str,
             predicted: float | None = None, ready: bool = False):
        """Draw a step's heading and button (its text too, before the figure in the normal layout)
        with its predicted time, or "ready" when its result is in the server's cache (another
        session of the class computed it); return True when its result should be shown."""
        if runs.stopped(f"learn{i}"):
            st.session_state[f"learn.done{i}"] = False
        st.subheader(f"{i}. {title}")
        if not self.presenter:
            st.markdown(text)
            if words:
                st.caption("  \n".join(f"**{w}** — {d}" for w, d in words))
        b, note = st.columns([1.6, 2]) if predicted is not None else (st.container(), None)
        if b.button(button, key=f"learn_run{i}", type="primary" if not self._done(i) else "secondary",
                    icon=":material/play_arrow:"):
            st.session_state[f"learn.done{i}"] = True
        if note is not None and not self._done(i):
            # once clicked, the page draws the steps above this one again before its job starts
            note.caption("ready: computed earlier on this server, shown at once" if ready else
                         predict.predicted_text(predicted + state.page_seconds()))
        # the presenter layout says the finding above the figure, where a projector shows it
        self._finding = st.container() if self.presenter else None
        return self._done(i)

    def after(self, i: int, text: str, words: list[tuple[str, str]]) -> None:
        """In the presenter layout the step's explanation comes after its figure."""
        if self.presenter:
            with st.expander("What this step is about", expanded=not self._done(i)):
                st.markdown(text)
                st.caption("  \n".join(f"**{w}** — {d}" for w, d in words))

    def say(self, text: str) -> None:
        """The step's finding, computed from the numbers in its figure."""
        (self._finding or st).markdown(f":material/lightbulb: {text}")

    def _map(self, i: int, settings):
        with runs.stoppable(f"learn{i}"):
            return self._map_now(settings)

    def _map_now(self, settings):
        out = runs.run("Computing the map", caching.map_result, self.ctx, settings,
                       predicted=predict.predict_map(self.ctx.model, self.ctx.x, settings))
        if out.value is not None and not out.cached:
            predict.record_map(self.ctx.model, self.ctx.x, out.value.settings, out.value.elapsed)
        return out.value

    def _attack(self, i: int, settings):
        with runs.stoppable(f"learn{i}"):
            out = runs.run(f"Attacking the {METHODS[settings.method].label} map", caching.attack, self.ctx, settings,
                           self.ATTACK, predicted=predict.predict_attack(self.ctx.model, self.ctx.x, settings,
                                                                        self.ATTACK))
        if out.value is not None and not out.cached:
            predict.record_attack(self.ctx.model, self.ctx.x, settings, self.ATTACK, out.value.elapsed)
        return out.value

    # ---------------------------------------------------------------------------------- steps

    def step1(self):
        text = ("A neural network turns the picture into a guess of what it shows, with a confidence for each "
                "possible answer. Here is what it says about the current image.")
        words = [("Neural network", "a program that learned from many labelled pictures to name what is in one.")]
        if self.step(1, "The model looks at a picture", text, words, "Ask the model"):
            preds = caching.predictions(self.ctx)
            a, b = st.columns([1, 1.4])
            a.image(self.ctx.picture, caption=f"{self.ctx.image_name}, as the model sees it", width="stretch")
            with b:
                W.figure(P.prediction_figure(preds), "learn_fig1", "The longer the bar, the more sure the model is.")
            (_, top, p), (_, second, p2) = preds[0], preds[1]
            self.say(f"The model says **{top}** with {p:.0%} confidence; its second guess, {second}, gets {p2:.0%}.")
        self.after(1, text, words)

    def step2(self):
        text = ("An **interpretation map** colours each part of the picture by how much it mattered for the answer. "
                "The simplest one asks: if this patch changed a little, how much would the model's score change?")
        words = [("Gradient", "how fast the model's score changes when a pixel changes a little."),
                 ("Top-k cells", f"the k most important patches ({self.CELL}×{self.CELL} pixels each) — outlined in orange.")]
        if self.step(2, "Where did it look?", text, words, "Draw the map", predict.predict_map(self.ctx.model, self.ctx.x, self.MAP),
                     self._held("map", self.MAP)):
            r = self._map(2, self.MAP)
            if r is not None:
                W.figure(P.map_figure(self.ctx.picture, r.map, r.pixel_cell, 0.6, topk_mask=r.topk_mask(), height=self.FIG_H,
                                      title="Vanilla gradient map"), "learn_fig2",
                         "Bright = where the model looked; orange outline = the most important patches.")
                share = float(r.map[r.topk_mask()].sum() / max(r.map.sum(), 1e-12))
                self.say(f"The **{r.k} outlined patches** (of {r.n}) are what the map says mattered most for "
                    f"**{r.label}**; together they hold {share:.0%} of the map's total importance.")
        self.after(2, text, words)

    def step3(self):
        budget = f"{self.ATTACK.epsilon * 255:.0f}/255"
        text = (f"An **interpretation attack** changes every pixel by at most {budget} — invisible to us — so that "
                "the model still gives the same answer but the map points somewhere else. If a map can be moved "
                "this easily, can we trust it?")
        words = [(f"Budget {budget}", f"no pixel value changes by more than {self.ATTACK.epsilon * 255:.0f} steps out of 255."),
                 ("Top-k intersection", "the share of the important patches still important after the change "
                                        "(1 = all stayed, 0 = none).")]
        if self.step(3, "A tiny change moves the map", text, words, "Attack the map",
                predict.predict_attack(self.ctx.model, self.ctx.x, self.MAP, self.ATTACK),
                self._held("attack", self.MAP, self.ATTACK)):
            res = self._attack(3, self.MAP)
            if res is not None:
                r = res.result
                clean, attacked = as_array(r.clean_map), as_array(r.attacked_map)
                zmax = P.display_scale(clean, attacked)
                a, b = st.columns(2)
                with a:
                    W.figure(P.map_figure(self.ctx.picture, clean, res.pixel_cell, 0.6, zmax=zmax,
                                          topk_mask=topk_mask(clean, res.k), title=f"Before: {res.clean_name}",
                                          height=self.FIG_H - 40), "learn_fig3a", "The map of the original picture.")
                with b:
                    W.figure(P.map_figure(working_image(r.x_adv), attacked, res.pixel_cell, 0.6, zmax=zmax,
                                          topk_mask=topk_mask(attacked, res.k), title=f"After: {res.adv_name}",
                                          height=self.FIG_H - 40), "learn_fig3b",
                             "The map after the invisible change, on the same colour scale.")
                W.metric(st, "Top-k intersection", f"{r.topk_intersection:.2f}", f"{r.topk_intersection - 1:+.2f} vs 1.00 "
                         "without attack", good_up=True, help="Top-k intersection: the share of the important "
                                                              "patches still important after the change.")
                same = "still says" if r.label_preserved else "now says"
                kept = (f"but only **{r.topk_intersection:.0%}** of the {res.k} important patches are still important."
                        if r.topk_intersection < 1 else
                        f"and all {res.k} important patches are still important: this time the attack did not "
                        "move them.")
                self.say(f"After a change of at most {r.linf * 255:.1f}/255 per value the model {same} **{res.adv_name}** "
                    f"({r.adv_confidence:.0%}), {kept}")
        self.after(3, text, words)

    def step4(self):
        text = (f"Instead of one map, compute maps of {self.T} noisy copies of the picture and combine them. **RRS** "
                "(Rényi-Robust-Smooth) gives each patch a score by its *rank* in every noisy map and averages the "
                "scores, so one copy alone cannot change much.")
        words = [(f"Noise σ = {self.SMOOTH.sigma:g}", f"random changes of about {self.SMOOTH.sigma * 255:.0f}/255 added to every "
                                                 "pixel value."),
                 ("Rank", "a patch's place in the order of importance: 1st, 2nd, 3rd, …")]
        if self.step(4, "Smoothing: average over noisy copies", text, words, "Smooth the map",
                predict.predict_map(self.ctx.model, self.ctx.x, self.SMOOTH), self._held("map", self.SMOOTH)):
            r = self._map(4, self.SMOOTH)
            if r is not None:
                a, b = st.columns([0.8, 1.5])
                a.image(caching.noise_preview(self.ctx, self.SMOOTH.sigma), caption=f"one noisy copy (σ = {self.SMOOTH.sigma:g})",
                        width="stretch")
                with b:
                    W.figure(P.map_figure(self.ctx.picture, r.map, r.pixel_cell, 0.6, topk_mask=r.topk_mask(), height=self.FIG_H,
                                          title=f"RRS map from {r.samples_used} noisy copies"), "learn_fig4",
                             "Bright = important on average over the noisy copies; orange = top-k patches.")
                agree = r.raw_agreement()
                self.say(f"The RRS map from {r.samples_used} noisy copies shares **{agree:.0%}** of its {r.k} most "
                    "important patches with the plain gradient map of step 2.")
        self.after(4, text, words)

    def step5(self):
        text = ("Now the same attack against the RRS map. The attacker must fool the map for *all* noisy copies at "
                "once. We also run the smoothed map twice with different noise: even without an attack the two "
                "runs differ a little — that is the **floor** the attacked value should be compared with.")
        words = [("No-attack floor", "how much two honest runs with different noise agree.")]
        predicted = predict.predict_attack(self.ctx.model, self.ctx.x, self.SMOOTH, self.ATTACK)
        if self.step(5, "Does smoothing resist the attack?", text, words, "Attack the smoothed map", predicted,
                     self._held("attack", self.SMOOTH, self.ATTACK)):
            res, plain = self._attack(5, self.SMOOTH), self._attack(5.1, self.MAP)
            if res is not None and plain is not None:
                rows = [plain.row(), res.row()]
                W.figure(P.bars_figure([METHODS[r["method_id"]].short for r in rows],
                                       [{"name": "no-attack floor", "values": [r["no_attack_floor"] for r in rows],
                                         "color": P.PALETTE[5]},
                                        {"name": "under attack", "values": [r["attacked_topk_intersection"] for r in rows],
                                         "color": P.PALETTE[3]}], height=self.FIG_H - 40), "learn_fig5",
                         "Higher = steadier. Compare each method's attacked bar with its own floor.")
                self.say(story.attack_takeaway(rows).replace("What this shows: ", ""))
        self.after(5, text, words)

    def step6(self):
        coarser = self.CERT.cell != self.CELL   # say so, never silently
        c = self.CERT.cell
        cells = (f" Note the patches: {c}×{c} pixels here, {'larger' if c > self.CELL else 'smaller'} than the "
                 f"{self.CELL}×{self.CELL} of the steps before — the largest the app offers at this image size, "
                 "because bigger patches change rank less easily, so their guarantee reaches further."
                 if coarser else "")
        text = ("Because RRS averages ranks over random noise, maths from *differential privacy* can prove that some "
                "patches stay among the most important for **every** change up to a certain size — not just for "
                f"the attacks we tried. Blue patches below carry that guarantee.{cells}")
        words = [("Certified radius", "the largest change (measured in ℓ2, the overall size of the change) for which "
                                      "the guarantee holds."),
                 ("Plug-in estimate", "treats the sampled map as exact — an estimate, not yet a guarantee.")]
        if self.step(6, "A guarantee: the certificate", text, words, "Compute the guarantee",
                     self._guarantee_seconds(), self._guarantee_held()):
            r = self._map(6, self.CERT)
            if r is not None:
                start = time.perf_counter()
                cr = caching.certificate(self.ctx, r, self.CERTIFY)
                state.not_drawing(time.perf_counter() - start)
                predict.record_certificate(self.ctx.model, self.ctx.x, self.CERT, cr.elapsed)
                told = story.certificate_story(cr)
                W.figure(P.region_figure(self.ctx.picture, told["categories"], r.pixel_cell, 0.55, title=told["title"],
                                         height=self.FIG_H), "learn_fig6", told["caption"])
                self.say(told["text"])
                size = (f"{r.pixel_cell}×{r.pixel_cell}-px patches (steps 2–5: {self.CELL}×{self.CELL})" if coarser
                        else f"{r.pixel_cell}×{r.pixel_cell}-px patches")
                st.caption(f"{r.samples_used} noisy copies, {size}, σ = {self.CERT.sigma:g}. The Certify "
                           "page shows every certificate, for the whole set of patches and for each patch.")
        self.after(6, text, words)

    def step7(self):
        text = ("Step 6 proved a size of change. Now we spend exactly that much change on an attack — on the plain "
                "gradient map and on the certified RRS map, side by side. Grey dotted patches are top patches the "
                "attack pushed out.")
        words = [("Same change", "one attack budget, the certified radius of step 6, for both maps.")]
        # step 6's map and certificate come from the cache (computed first when step 6 has not run)
        predicted = ((0.0 if self._guarantee_held() else self._guarantee_seconds())
                     + predict.predict_robustness(self.ctx.model, self.ctx.x,
                                                *_pair(WA.attack_settings(self.CERT, self.CERTIFY.norm, "vanilla")),
                                                references=(self.CERT.method,)))
        if self.step(7, "The same change, two maps", text, words, "Attack both maps", predicted,
                     self._held("contrast", self.CERT)):
            res = self._contrast()
            if res is not None:
                self.say(story.contrast_story(res, 3 * self.ctx.size * self.ctx.size))   # first: above the fold
                cols = st.columns(2, gap="medium")
                for col, p, name in zip(cols, (res.raw, res.smoothed), ("plain gradient", "RRS (certified)")):
                    grid = np.asarray(p.clean_map).shape
                    top = np.zeros(grid, dtype=bool).ravel()
                    top[list(p.top_cells)] = True
                    fell = np.zeros_like(top)
                    fell[list(p.fallen)] = True
                    with col:
                        W.figure(P.map_figure(working_image(p.attacked_image), np.asarray(p.attacked_map), self.pixel_cell(p),
                                              0.6, topk_mask=(top & ~fell).reshape(grid), lost_mask=fell.reshape(grid),
                                              title=f"{name}, attacked", height=self.FIG_H, colorbar=False),
                                 f"learn_fig7_{'raw' if not p.settings.smoothed else 'rrs'}",
                                 story.kept_words(p, "patches"))
        self.after(7, text, words)

    def _contrast(self):
        """Step 7's attack: both maps at step 6's radius, on the cells step 6 certified there
        (its map and certificate come from the cache); None when step 6 guaranteed nothing."""
        with runs.stoppable("learn7"):
            r = self._map_now(self.CERT)
            if r is None:
                return None
            told = story.certificate_story(caching.certificate(self.ctx, r, self.CERTIFY))
            if not told["finite"] or told["certified"] == 0:
                st.info("Step 6 guaranteed no patch at this image's settings, so there is no certified size of "
                        "change to spend. The Certify page can run more noise samples.", icon=":material/info:")
                return None
            claimed = np.flatnonzero(np.asarray(told["categories"]).ravel() == 2)
            return W.with_progress("Attacking both maps with step 6's size of change", caching.contrast_at,
                                   self.ctx, r, told["radius"], tuple(claimed), self.CERTIFY.norm)

    def pixel_cell(self, panel) -> int:
        """Patch side in pixels of a contrast panel's map."""
        return self.ctx.size // np.asarray(panel.clean_map).shape[0]
