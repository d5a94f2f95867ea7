"""Learn: a guided walkthrough for a class, one button per step, on the current image.

Every sentence under a figure is computed from the numbers the figure shows
(:mod:`ui.story`); the presenter layout shows one step per screen, figures first, in large
type, for a projector. The steps live in :mod:`ui.learn`.
"""
import streamlit as st

from ui import learn as L
from ui import sidebar, state

ctx = sidebar.page("Learn", "Seven short steps, each with a button that runs it on the image chosen in the sidebar. "
                   "No background needed: every technical word is explained in one line.")

presenter = state.widget(st.toggle, "Presenter layout (large type, one step per screen)", "learn_presenter", False,
                         help="For a projector: one step at a time, figure first, readable from the back of "
                              "the room. Previous / Next move between steps.")
if presenter:
    st.markdown(L.PRESENTER_CSS, unsafe_allow_html=True)
lesson = L.Lesson(ctx, presenter)

if presenter:
    # Previous / Next on top, so a projector at 1024×768 shows them with the step's finding
    # without scrolling (the figure comes after the finding in this layout)
    current = int(st.session_state.get("learn.slide", 1))
    prev_col, mid, next_col = st.columns([1, 2, 1], vertical_alignment="center")
    prev_col.button("Previous", key="learn_prev", disabled=current <= 1, icon=":material/arrow_back:",
                    on_click=lambda: st.session_state.update({"learn.slide": current - 1}), width="stretch")
    mid.caption(f"Step {current} of {L.STEPS}")
    next_col.button("Next", key="learn_next", disabled=current >= L.STEPS, icon=":material/arrow_forward:",
                    on_click=lambda: st.session_state.update({"learn.slide": current + 1}), width="stretch")
    lesson.steps[current - 1]()
else:
    for show in lesson.steps:
        show()
