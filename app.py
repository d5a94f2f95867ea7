"""rrs app: the Home page and the router that draws the shared sidebar for every page.

Run with ``make run`` (or ``streamlit run app.py``). Pages live in ``app_pages/`` — not in
``pages/``, which Streamlit would treat as an old-style multipage folder and, on a fresh
server, run a deep-linked page without this router. Shared Streamlit helpers are in
``ui/common.py``; all computation is in the ``rrs`` library.
"""
import streamlit as st

from rrs import plots as P
from ui import common as ui

st.set_page_config(page_title="RRS · robust interpretation maps", page_icon=":material/verified:",
                   layout="wide", initial_sidebar_state="expanded")

PAGES = {
    "Explain": ("app_pages/1_Explain.py", ":material/visibility:",
                "See where the model looked — raw and smoothed maps side by side."),
    "Certify": ("app_pages/2_Certify.py", ":material/verified_user:",
                "Which top cells are guaranteed to stay, for any change up to a given size."),
    "Attack": ("app_pages/3_Attack.py", ":material/bolt:",
               "Move the map with an invisible change of the image — and see which methods resist."),
    "Compare": ("app_pages/4_Compare.py", ":material/stacked_line_chart:",
                "Robustness versus computation: how many noise samples are worth it."),
    "Learn": ("app_pages/5_Learn.py", ":material/school:",
              "A guided walkthrough for a class, one button per step."),
}


def _use_sample(name: str) -> None:
    ui.set_setting("sb_sample", name)
    st.session_state["sb.source"] = "sample"


def home() -> None:
    ctx = ui.page(
        "Robust interpretation maps",
        "An **interpretation map** shows which parts of an image a neural network relied on for "
        "its answer. Such maps are fragile: a change of the image too small to see can move them "
        "completely. This app shows the maps, attacks them, and computes **guarantees** that parts "
        "of a map cannot move — using *Rényi-Robust-Smooth* (Liu et al., 2022), which averages "
        "maps over noisy copies of the image.")
    left, right = st.columns([1, 1.3], gap="large")
    with left:
        st.image(ctx.picture, caption=f"{ctx.image_name} — what the model sees "
                                      f"({ctx.size}×{ctx.size} working resolution)", width=340)
    with right:
        preds = ui.predictions(ctx.model_key, ctx.image_digest, ctx.size, ctx.model, ctx.x)
        _, top_name, top_p = preds[0]
        m1, m2 = st.columns(2)
        ui.metric(m1, "Prediction", top_name)
        ui.metric(m2, "Confidence", f"{top_p:.1%}")
        ui.figure(P.prediction_figure(preds), "home_pred",
                  f"The model's five most likely classes for this image ({ctx.model_label}).")
    st.subheader("Where to go next")
    cols = st.columns(len(PAGES))
    for col, (name, (path, icon, text)) in zip(cols, PAGES.items()):
        with col.container(border=True):
            st.page_link(path, label=name, icon=icon)
            st.caption(text)
    st.subheader("Sample gallery")
    st.caption("Public-domain images bundled with the app. Pick one here or in the sidebar, or upload "
               "your own there. Your choices and settings stay while you move between pages.")
    samples = [n for n, _ in ui.list_samples()]
    per_row = 6
    for start in range(0, len(samples), per_row):
        cols = st.columns(per_row)
        for col, name in zip(cols, samples[start:start + per_row]):
            with col:
                st.image(ui.thumbnail(name), width="stretch")
                st.button(name, key=f"home_use_{name}", on_click=_use_sample, args=(name,),
                          type="primary" if (ctx.source == "sample" and name == ctx.image_name) else "secondary",
                          width="stretch")


pages = [st.Page(home, title="Home", icon=":material/home:", default=True)]
pages += [st.Page(path, title=name, icon=icon) for name, (path, icon, _) in PAGES.items()]
navigation = st.navigation(pages)
ui.sidebar()
navigation.run()
