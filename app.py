"""rrs app: the Home page (Streamlit's entry point; the other pages are in ``pages/``).

Run with ``make run`` (or ``streamlit run app.py``). Every page starts with
``ui.sidebar.page``, which draws the shared sidebar (page links, image, model, speed preset).
The ``ui`` package holds the app's Streamlit layer (``state``, ``sidebar``, ``caching``,
``widgets``) and its plain-Python compute (``compute``, ``budgets``, ``export``); the numbers
come from the ``rrs`` library.
"""
import streamlit as st

from ui import plots as P
from rrs.images import list_samples
from ui import caching, sidebar, state
from ui import widgets as W


def _pick(name: str) -> None:
    """Gallery click: the sample becomes the image, and the page says what the model sees."""
    state.use_sample(name)
    st.session_state["home.picked"] = name


def home() -> None:
    ctx = sidebar.page(
        "Robust interpretation maps",
        "An **interpretation map** shows which parts of an image a neural network relied on for "
        "its answer. Such maps are fragile: a change of the image too small to see can move them "
        "completely. This app shows the maps, attacks them, and computes **guarantees** that parts "
        "of a map cannot move — using *Rényi-Robust-Smooth* (Liu et al., 2022), which averages "
        "maps over noisy copies of the image.")
    left, right = st.columns([1, 1.4], gap="large")
    with left:
        st.image(ctx.picture, caption=f"{ctx.image_name} — what the model sees "
                                      f"({ctx.size}×{ctx.size} working resolution)", width="stretch")
    with right:
        preds = caching.predictions(ctx)
        _, top_name, top_p = preds[0]
        m1, m2 = st.columns([1.4, 1])
        W.metric(m1, "Prediction", top_name)
        W.metric(m2, "Confidence", f"{top_p:.0%}")
        W.figure(P.prediction_figure(preds), "home_pred",
                 f"The model's five most likely classes for this image ({ctx.model_label}).")
    st.subheader("Where to go next")
    pages = sidebar.PAGES[1:]
    per_row = 3     # five cards in one row cut the page names on a 1024-px projector
    for start in range(0, len(pages), per_row):
        cols = st.columns(per_row)
        for col, (path, name, icon, text) in zip(cols, pages[start:start + per_row]):
            with col.container(border=True):
                st.page_link(path, label=name, icon=icon)
                st.caption(text)
    st.subheader("Sample gallery")
    st.caption("Public-domain images bundled with the app. Pick one here or in the sidebar, or upload "
               "your own there. Your choices and settings stay while you move between pages.")
    picked = st.session_state.pop("home.picked", None)
    if picked:
        # the prediction above is off-screen after a click down here: say it where the user looks
        news = f"Now showing **{ctx.image_name}** — the model says **{top_name}** ({top_p:.0%} confident)."
        st.success(news, icon=":material/check_circle:")
        st.toast(news, icon=":material/image:")
    samples = [n for n, _ in list_samples()]
    per_row = 4     # names stay readable on a 1024-px projector
    for start in range(0, len(samples), per_row):
        cols = st.columns(per_row)
        for col, name in zip(cols, samples[start:start + per_row]):
            with col:
                st.image(caching.thumbnail(name), width="stretch")
                st.button(name, key=f"home_use_{name}", on_click=_pick, args=(name,),
                          type="primary" if (ctx.source == "sample" and name == ctx.image_name) else "secondary",
                          width="stretch")


home()
