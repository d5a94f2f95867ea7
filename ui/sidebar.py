"""The shared sidebar and page frame: page links, the image (bundled gallery or upload), the
model, the device in use, the "fast" preset and the working resolution.

Every page (``app.py`` and ``pages/*.py``) begins with :func:`page`, so a page opened by a
deep link or a reload has the same sidebar and settings as one reached by a link; it
returns the :class:`Context` every page works on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from rrs import models
from rrs.images import IMAGE_SUFFIXES, list_samples

from . import caching, state, style
from . import widgets as W
from .compute import working_image
from .budgets import device_label

DEFAULT_SAMPLE = "coffee"
#: ``RRS_DEFAULT_MODEL`` picks the model a new session starts with (e.g. ``tiny`` for load tests).
DEFAULT_MODEL = os.environ.get("RRS_DEFAULT_MODEL", "").strip() or models.DEFAULT_MODEL
IMAGE_TYPES = [s.lstrip(".") for s in IMAGE_SUFFIXES]

#: The app's pages: (script, label, icon, one-line description). ``app.py`` is Home, the
#: others are Streamlit's ``pages/`` folder; the sidebar draws these links itself (icons,
#: "Home" rather than "app"), so ``client.showSidebarNavigation`` is off in config.toml.
PAGES = [
    ("app.py", "Home", ":material/home:", "Pick an image and a model; see the prediction."),
    ("pages/1_Explain.py", "Explain", ":material/visibility:",
     "See where the model looked — raw and smoothed maps side by side."),
    ("pages/2_Certify.py", "Certify", ":material/verified_user:",
     "Which top cells are guaranteed to stay, for any change up to a given size."),
    ("pages/3_Attack.py", "Attack", ":material/bolt:",
     "Move the map with an invisible change of the image — and see which methods resist."),
    ("pages/4_Compare.py", "Compare", ":material/stacked_line_chart:",
     "Robustness versus computation: how many noise samples are worth it."),
    ("pages/5_Learn.py", "Learn", ":material/school:", "A guided walkthrough for a class, one button per step."),
]


@dataclass
class Context:
    """What every page works on: the chosen image at the working resolution and the model."""

    image_name: str
    image_digest: str
    source: str               # "sample" or "upload"
    original_size: tuple
    x: torch.Tensor           # (3, S, S) in [0, 1], on the CPU
    picture: np.ndarray       # (S, S, 3) uint8, what the maps are drawn over
    size: int
    model: torch.nn.Module
    model_key: str
    model_label: str
    device: str
    fast: bool

    @property
    def dim(self) -> int:
        """Input values ``N = 3·S·S`` (per-value equivalents of ℓ1/ℓ2 sizes)."""
        return 3 * self.size * self.size

    def provenance(self) -> dict:
        return {"image": self.image_name, "image_sha256_16": self.image_digest, "image_source": self.source,
                "original_size": list(self.original_size), "working_size": self.size,
                "model": self.model_key, "device": self.device, "fast_preset": self.fast,
                "torch": torch.__version__}


# ----------------------------------------------------------------------------- models

def model_label(name: str) -> str:
    """A registry model's name for people."""
    spec = models.MODELS.get(name)
    if spec is None:
        return name
    return spec.display_name + (" — very fast" if name == "tiny" else "")


def model_choice(name: str) -> str:
    """A registry model's name as its select box shows it, one short line ("EfficientNet-Lite0"):
    a select box shows its value in a one-line field, which cut "Tiny CNN (synthetic shapes,
    32×3" in the sidebar; the rest is :func:`model_detail`, under it."""
    return W.name_and_detail(model_label(name))[0]


def model_detail(name: str) -> str:
    """What the select box leaves out of :func:`model_label` ("Trained on ImageNet")."""
    detail = W.name_and_detail(model_label(name))[1]
    return f"Trained on {detail}" if detail else ""


def model_options() -> list[tuple[str, str, bool, str]]:
    """``(key, label, available, message)`` for every model the registry knows."""
    return [(name, model_label(name), bool(ok), str(msg)) for name, ok, msg in models.available_models()]


def _resolve_model(key: str):
    user = state.user_model()
    if user and key == user["key"]:
        return caching.get_user_model(user["digest"], user["arch"], user["name"], user["data"])
    return caching.get_model(key)


# ---------------------------------------------------------------------------- sections

def _image_section(sb):
    sb.markdown("#### Image")
    names = [n for n, _ in list_samples()]
    sample = state.widget(sb.selectbox, "Sample image", "sb_sample", DEFAULT_SAMPLE, options=names,
                          on_change=state.use_samples, help="Bundled public-domain images (see assets/samples).")
    key = state.upload_key()
    sb.file_uploader("…or upload your own", type=IMAGE_TYPES, key=key, on_change=state.process_upload,
                     args=(key,), help="PNG, JPEG, WebP, BMP, GIF or TIFF, up to 25 MB and 40 megapixels.")
    upload = state.upload_in_use()
    if upload:
        loaded = caching.load_upload(upload["digest"], upload["name"], upload["data"])
        sb.caption(f"Using your upload **{upload['name']}** ({loaded.size[0]}×{loaded.size[1]}).")
        sb.button(f"Use the sample ({sample}) instead", key="sb_back_to_sample", on_click=state.use_samples,
                  icon=":material/undo:")
        return loaded, upload["name"], upload["digest"], "upload"
    return caching.load_bundled(sample), sample, caching.sample_digest(sample), "sample"


def _model_section(sb) -> str:
    sb.markdown("#### Model")
    opts = model_options()
    labels = {k: model_choice(k) for k, _, ok, _ in opts if ok}
    user = state.user_model()
    if user:
        labels[user["key"]] = f"Yours: {user['name']}"
    key = state.widget(sb.selectbox, "Model", "sb_model", DEFAULT_MODEL, options=list(labels),
                       format_func=lambda k: labels.get(k, k),
                       help="The classifier whose interpretation maps you explore.")
    detail = f"Your weights on {model_choice(user['arch'])}" if user and key == user["key"] else model_detail(key)
    if detail:
        sb.caption(detail)
    with sb.expander("More models / your own weights"):
        for _, lbl, ok, msg in opts:
            if not ok:
                st.caption(f"**{lbl}** — not available: {msg}")
        st.selectbox("Architecture of your weights", list(models.MODELS), key="sb_user_arch",
                     format_func=model_choice, on_change=state.process_user_weights)
        st.file_uploader("state_dict (.pt/.pth) or .safetensors", type=["pt", "pth", "bin", "safetensors"],
                         key="sb_user_file", on_change=state.process_user_weights,
                         help="Weights only: pickled model objects are refused, never unpickled.")
        if st.session_state.get("sb.user_error"):
            st.error(st.session_state["sb.user_error"], icon=":material/error:")
    return key


def sidebar(loading=None) -> Context:
    """Draw the shared sidebar (page links, image, model, speed) and return the page context.
    ``loading``: a placeholder on the page that says so while a model loads (the first visit
    after a server start)."""
    sb = st.sidebar
    for path, label, icon, _ in PAGES:
        sb.page_link(path, label=label, icon=icon)
    loaded, name, digest, source = _image_section(sb)
    key = _model_section(sb)
    if loading is not None and not caching.model_loaded(key):
        loading.info(f"Loading the model ({model_label(key)}) … the first visit after a server start takes a "
                     "few seconds; the page appears when it is ready.", icon=":material/hourglass_top:")
    try:
        model = _resolve_model(key)
    except (ValueError, RuntimeError, OSError) as e:
        sb.error(f"Could not load {key}: {e}. Using the default model instead.")
        key = DEFAULT_MODEL
        model = caching.get_model(key)
    sb.markdown("#### Speed")
    fast = bool(state.widget(sb.toggle, "Fast preset (class use)", "sb_fast", False,
                             help="Coarser 16-px cells, fewer noise samples and shorter attacks: answers in seconds."))
    state.apply_preset(fast)
    native = int(model.input_size)
    sizes = [native] + [s for s in (160, 112) if s < native and native >= 128]
    size = state.widget(sb.selectbox, "Working resolution", "sb_size", native, options=sizes,
                        format_func=lambda s: f"{s}×{s}" + (", native" if s == native else ", faster"),
                        help="The model's own (native) resolution is the most accurate; a smaller one is "
                             "faster and less accurate.")
    x = caching.tensor(digest, int(size), model.resize_for(int(size)), loaded)
    device = device_label(model)
    threads = f" · {torch.get_num_threads()} threads" if device == "CPU" else ""
    sb.caption(f"Device in use: **{device}**{threads}")
    user = state.user_model()
    label = f"Yours: {user['name']} ({user['arch']})" if user and key == user["key"] else model_label(key)
    return Context(name, digest, source, tuple(loaded.size), x, working_image(x), int(size), model, key,
                   label, device, fast)


def page(title: str, intro: str) -> Context:
    """Start a page: page config, the shared sidebar, heading, intro, any pending image error.
    The tab icon is an emoji (drawn by the browser); a ``:material/…:`` icon would be fetched
    from fonts.gstatic.com, which an offline classroom cannot reach."""
    st.set_page_config(page_title=f"{title} · RRS robust interpretation maps", page_icon="🛡️",
                       layout="wide", initial_sidebar_state="expanded")
    state.resume([n for n, _ in list_samples()])
    presenting = style.presenter(title)
    style.inject(presenter=presenting)
    state.enter_page(title)
    # the heading first: on a cold server the model takes seconds to load, and the page
    # should say so rather than stay blank
    st.title(title)
    if not presenting:          # the presenter layout keeps the screen for the step itself
        st.markdown(intro)
    loading = st.empty()
    ctx = sidebar(loading)
    loading.empty()
    state.page_started()        # what the page draws from here on (a cold model load is not part of it)
    state.mirror_url(ctx.image_name, ctx.image_digest, ctx.source, ctx.model_key, ctx.fast)
    _upload_error(ctx)
    return ctx


def upload_error_text(err: dict, ctx: Context) -> str:
    """What went wrong with an upload and which image is shown instead (the one in use now)."""
    shown = (f"Still showing your previous upload **{ctx.image_name}**." if ctx.source == "upload"
             else f"Showing the sample **{ctx.image_name}** instead.")
    return f"**{err['name']}** could not be used: {err['why'].rstrip('.')}. {shown}"


def _upload_error(ctx: Context) -> None:
    """The one place a refused upload is reported (cleared by picking any image)."""
    err = state.upload_error()
    if err is None:
        return
    st.error(upload_error_text(err, ctx), icon=":material/error:")
    previous = st.session_state.get("sb.upload")
    if ctx.source == "sample" and previous:
        st.button(f"Use your earlier upload {previous['name']} again", key="sb_previous_upload",
                  on_click=state.use_previous_upload, icon=":material/undo:")
