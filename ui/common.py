"""The app's shared Streamlit layer: sidebar, settings that persist across pages, caching,
progress, provenance and export buttons.

Only this package and the page files import streamlit; all computation is in ``rrs``
(mostly :mod:`rrs.session`). Per-session state lives in ``st.session_state`` under
page-prefixed keys (``explain_…``, ``certify_…``, ``attack_…``, ``compare_…``, ``learn_…``,
``sb_…`` for the sidebar); models are shared read-only through ``st.cache_resource`` and
results through ``st.cache_data`` keyed by every parameter, so several browser sessions
never share mutable state.
"""
from __future__ import annotations

import contextvars
import math
import re
import time
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from rrs import plots as P
from rrs import session as S
from rrs.images import IMAGE_SUFFIXES, ImageError, list_samples, load_image, load_sample, to_tensor

DEFAULT_SAMPLE = "coffee"
PAGE = "sb.page"                  # the title of the page drawn last
PAGE_CHANGED = "sb.page_changed"  # this run draws a different page than the last run
DEFAULT_MODEL = "efficientnet-lite0"
IMAGE_TYPES = [s.lstrip(".") for s in IMAGE_SUFFIXES]
KEEP = "keep."

# ------------------------------------------------------------------ defaults and presets

#: Page settings that the "fast" preset changes: key -> (normal, fast).
PRESET = {
    "explain_samples": (16, 8),
    "explain_cell": (8, 16),
    "certify_samples": (1024, 256),
    "certify_cell": (32, 32),
    "attack_samples": (16, 8),
    "attack_cell": (8, 16),
    "attack_steps": (10, 5),
    "attack_eot": (4, 2),
    "compare_ts": ([1, 2, 4, 8, 16], [1, 2, 4, 8]),
    "compare_steps": (5, 3),
    "compare_eot": (2, 1),
    "compare_cell": (16, 16),
}


def preset_default(key: str, default=None):
    """The default of ``key`` under the current preset (``default`` for keys not in it)."""
    if key in PRESET:
        normal, fast = PRESET[key]
        return fast if st.session_state.get(KEEP + "sb_fast", False) else normal
    return default


def _apply_preset(fast: bool) -> None:
    """Set every preset-controlled page setting to its normal or fast value.

    Run by :func:`sidebar` when the toggle differs from the preset last applied (not as an
    ``on_change`` callback, which could read the toggle of the page the user just left)."""
    for key, (normal, fast_value) in PRESET.items():
        value = fast_value if fast else normal
        st.session_state[KEEP + key] = value
        st.session_state[key] = value


def set_setting(key: str, value) -> None:
    """Change a page setting from code (e.g. a "try this" button's callback)."""
    st.session_state[KEEP + key] = value
    st.session_state[key] = value


def widget(fn, label: str, key: str, default=None, *, options=None, **kwargs):
    """Create a widget whose value survives page switches.

    Streamlit forgets a widget's state when its page is not shown, and a sidebar widget is
    a different widget on every page (each page script draws its own sidebar). The value is
    therefore mirrored under ``keep.<key>`` and restored before the widget is created on a
    page that was not the last one shown.
    ``fn`` is e.g. ``st.slider`` or ``column.selectbox``; ``options`` is passed on and used
    to reject a remembered value that is no longer valid.
    """
    default = preset_default(key, default)
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(KEEP + key, default)
    elif st.session_state.get(PAGE_CHANGED) and KEEP + key in st.session_state:
        st.session_state[key] = st.session_state[KEEP + key]
    value = st.session_state[key]
    if options is not None:
        opts = list(options)
        if isinstance(value, list):
            if any(v not in opts for v in value):
                st.session_state[key] = [v for v in value if v in opts] or default
        elif value not in opts:
            st.session_state[key] = default if default in opts else _nearest(default, opts)
        kwargs["options"] = opts
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is not None and hi is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not lo <= value <= hi:
            st.session_state[key] = min(max(value, lo), hi)
    result = fn(label, key=key, **kwargs)
    st.session_state[KEEP + key] = result
    return result


def _nearest(value, options: list):
    """The option closest to ``value`` (numeric options), else the first option."""
    try:
        return min(options, key=lambda o: abs(float(o) - float(value)))
    except (TypeError, ValueError):
        return options[0]


# ----------------------------------------------------------------------------- context

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

    def provenance(self) -> dict:
        return {"image": self.image_name, "image_sha256_16": self.image_digest, "image_source": self.source,
                "original_size": list(self.original_size), "working_size": self.size,
                "model": self.model_key, "device": self.device, "fast_preset": self.fast,
                "torch": torch.__version__}


# --------------------------------------------------------------------- cached resources

def _registry():
    try:
        from rrs import models as M
    except ImportError:  # pragma: no cover - the package always has rrs.models
        return None
    return M if hasattr(M, "available_models") else None


def model_options() -> list[tuple[str, str, bool, str]]:
    """``(key, label, available, message)`` for every model the registry knows."""
    M = _registry()
    if M is None:
        return [(DEFAULT_MODEL, "EfficientNet-Lite0 (ImageNet)", True, "")]
    out = []
    for entry in M.available_models():
        name, ok, msg = entry[0], bool(entry[1]), str(entry[2]) if len(entry) > 2 else ""
        out.append((name, _model_label(name), ok, msg))
    return out


def _model_label(name: str) -> str:
    M = _registry()
    spec = getattr(M, "MODELS", {}).get(name) if M is not None else None
    if spec is not None:
        label = spec.display_name
        return label + (" — very fast" if name == "tiny" else "")
    return {"efficientnet-lite0": "EfficientNet-Lite0 (ImageNet)"}.get(name, name)


@st.cache_resource(show_spinner="Loading the model …", max_entries=6)
def get_model(name: str) -> torch.nn.Module:
    """A registered model, loaded once per server and shared read-only between sessions."""
    M = _registry()
    from rrs import models as base
    if name == "tiny" and M is not None and hasattr(M, "load_tiny"):
        model = M.load_tiny()
    elif M is not None and hasattr(M, "load_model"):
        model = M.load_model(name)
    elif name == DEFAULT_MODEL:
        model = base.load_default()
    else:
        raise ValueError(f"unknown model {name!r}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@st.cache_resource(show_spinner="Loading your model …", max_entries=4)
def get_user_model(digest: str, arch: str, name: str, _data: bytes) -> torch.nn.Module:
    """A user's weights for a known architecture (``torch.load(weights_only=True)`` or
    safetensors, in :func:`rrs.models.load_user_model`)."""
    M = _registry()
    model = M.load_user_model(_data, arch)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@st.cache_data(show_spinner=False, max_entries=8)
def _load_upload(digest: str, name: str, _data: bytes):
    return load_image(_data, name=name)


@st.cache_data(show_spinner=False, max_entries=32)
def _load_sample(name: str):
    return load_sample(name)


@st.cache_data(show_spinner=False, max_entries=64)
def _tensor(digest: str, size: int, _loaded) -> torch.Tensor:
    return to_tensor(_loaded, size)


@st.cache_data(show_spinner=False, max_entries=256)
def predictions(model_key: str, digest: str, size: int, _model, _x, k: int = 5):
    """Top-``k`` classes of the working image."""
    from rrs.models import predict_topk
    return predict_topk(_model, _x, k=min(k, getattr(_model, "num_classes", k)))


def _sample_digest(name: str) -> str:
    path = dict(list_samples())[name]
    return S.image_digest(path.read_bytes())


# ---------------------------------------------------------------------------- sidebar

def _use_samples() -> None:
    st.session_state["sb.source"] = "sample"


def _process_upload(up) -> None:
    """Validate a new upload; on success it becomes the image, on failure the old one stays.

    The uploader is a new, empty widget on every page; the upload stays in use across pages
    and only counts as removed when the user clears it on the page where it was made."""
    if st.session_state.get(PAGE_CHANGED):
        st.session_state["sb.upload_id"] = None
    if up is None:
        if st.session_state.get("sb.upload_id") is not None:
            # the user removed the file: go back to the samples
            st.session_state["sb.upload_id"] = None
            st.session_state.pop("sb.upload_error", None)
            st.session_state["sb.source"] = "sample"
        return
    if up.file_id == st.session_state.get("sb.upload_id"):
        return
    st.session_state["sb.upload_id"] = up.file_id
    data = up.getvalue()
    digest = S.image_digest(data)
    try:
        loaded = _load_upload(digest, up.name, data)
    except ImageError as e:
        st.session_state["sb.upload_error"] = str(e)
        return
    st.session_state.pop("sb.upload_error", None)
    st.session_state["sb.upload"] = {"name": up.name, "digest": digest, "data": data,
                                     "size": tuple(loaded.size)}
    st.session_state["sb.source"] = "upload"


def _image_section(sb):
    sb.markdown("#### Image")
    names = [n for n, _ in list_samples()]
    sample = widget(sb.selectbox, "Sample image", "sb_sample", DEFAULT_SAMPLE, options=names,
                    on_change=_use_samples, help="Bundled public-domain images (see assets/samples).")
    up = sb.file_uploader("…or upload your own", type=IMAGE_TYPES, key="sb_upload",
                          help="PNG, JPEG, WebP, BMP, GIF or TIFF, up to 25 MB and 40 megapixels.")
    _process_upload(up)
    if st.session_state.get("sb.upload_error"):
        sb.error(st.session_state["sb.upload_error"], icon=":material/error:")
    upload = st.session_state.get("sb.upload")
    if st.session_state.get("sb.source") == "upload" and upload:
        loaded = _load_upload(upload["digest"], upload["name"], upload["data"])
        sb.caption(f"Using your upload **{upload['name']}** ({loaded.size[0]}×{loaded.size[1]}).")
        sb.button(f"Use the sample ({sample}) instead", key="sb_back_to_sample", on_click=_use_samples,
                  icon=":material/undo:")
        return loaded, upload["name"], upload["digest"], "upload"
    loaded = _load_sample(sample)
    return loaded, sample, _sample_digest(sample), "sample"


def _model_section(sb):
    sb.markdown("#### Model")
    opts = model_options()
    usable = [(k, lbl) for k, lbl, ok, _ in opts if ok]
    labels = dict(usable)
    user = st.session_state.get("sb.user_model")
    if user:
        labels[user["key"]] = f"Yours: {user['name']} ({user['arch']})"
    keys = list(labels)
    key = widget(sb.selectbox, "Model", "sb_model", DEFAULT_MODEL, options=keys,
                 format_func=lambda k: labels.get(k, k),
                 help="The classifier whose interpretation maps you explore.")
    missing = [(lbl, msg) for k, lbl, ok, msg in opts if not ok]
    M = _registry()
    with sb.expander("More models / your own weights"):
        for lbl, msg in missing:
            st.caption(f"**{lbl}** — not available: {msg}")
        if M is not None and hasattr(M, "load_user_model"):
            st.selectbox("Architecture of your weights", _user_archs(M), key="sb_user_arch",
                         format_func=_model_label, on_change=_process_user_weights)
            st.file_uploader("state_dict (.pt/.pth) or .safetensors", type=["pt", "pth", "bin", "safetensors"],
                             key="sb_user_file", on_change=_process_user_weights,
                             help="Weights only: pickled model objects are refused, never unpickled.")
            if st.session_state.get("sb.user_error"):
                st.error(st.session_state["sb.user_error"], icon=":material/error:")
        else:
            st.caption("Loading your own weights needs rrs.models.load_user_model.")
    return key


def _process_user_weights() -> None:
    """Callback (runs before the script, so it may switch the model picker): load the
    uploaded weights for the chosen architecture, or keep the current model and say why."""
    f = st.session_state.get("sb_user_file")
    arch = st.session_state.get("sb_user_arch")
    if f is None or arch is None:
        st.session_state.pop("sb.user_error", None)
        return
    data = f.getvalue()
    digest = S.image_digest(data)
    try:
        get_user_model(digest, arch, f.name, data)
    except (ValueError, RuntimeError, OSError) as e:
        st.session_state["sb.user_error"] = f"{f.name}: {e}"
        return
    st.session_state.pop("sb.user_error", None)
    key = f"user:{digest}:{arch}"
    st.session_state["sb.user_model"] = {"key": key, "name": f.name, "arch": arch, "digest": digest, "data": data}
    set_setting("sb_model", key)


def _user_archs(M) -> list[str]:
    return list(getattr(M, "MODELS", {}) or ["resnet18"])


def _resolve_model(key: str):
    user = st.session_state.get("sb.user_model")
    if user and key == user["key"]:
        return get_user_model(user["digest"], user["arch"], user["name"], user["data"])
    return get_model(key)


# ------------------------------------------------------------------------- navigation

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


def sidebar() -> Context:
    """Draw the shared sidebar (page links, image, model, speed) and return the page context."""
    sb = st.sidebar
    for path, label, icon, _ in PAGES:
        sb.page_link(path, label=label, icon=icon)
    loaded, name, digest, source = _image_section(sb)
    key = _model_section(sb)
    try:
        model = _resolve_model(key)
    except (ValueError, RuntimeError, OSError) as e:
        sb.error(f"Could not load {key}: {e}. Using the default model instead.")
        key = DEFAULT_MODEL
        model = get_model(key)
    sb.markdown("#### Speed")
    fast = bool(widget(sb.toggle, "Fast preset (class use)", "sb_fast", False,
                       help="Coarser 16-px cells, fewer noise samples and shorter attacks: answers in seconds."))
    if fast != st.session_state.get("sb.fast_applied", False):
        _apply_preset(fast)
        st.session_state["sb.fast_applied"] = fast
    native = int(getattr(model, "input_size", 224))
    sizes = [native] + [s for s in (160, 112) if s < native and native >= 128]
    size = widget(sb.selectbox, "Working resolution", "sb_size", native, options=sizes,
                  format_func=lambda s: f"{s}×{s}" + (" (the model's own)" if s == native else " (faster, less accurate)"))
    x = _tensor(digest, int(size), loaded)
    device = S.device_label(model)
    threads = f" · {torch.get_num_threads()} threads" if device == "CPU" else ""
    sb.caption(f"Device in use: **{device}**{threads}")
    ctx = Context(name, digest, source, tuple(loaded.size), x, S.working_image(x), int(size), model, key,
                  _model_label(key), device, bool(fast))
    return ctx


# ------------------------------------------------------------------------- page helpers

def page(title: str, intro: str) -> Context:
    """Start a page: page config, the shared sidebar, heading, intro, any pending image error.

    Every page (``app.py`` and ``pages/*.py``) begins with this call, so a page opened by a
    deep link or a reload has the same sidebar and settings as one reached by a link.
    """
    st.set_page_config(page_title=f"{title} · RRS robust interpretation maps", page_icon=":material/verified:",
                       layout="wide", initial_sidebar_state="expanded")
    st.session_state[PAGE_CHANGED] = st.session_state.get(PAGE) != title
    st.session_state[PAGE] = title
    ctx = sidebar()
    st.title(title)
    st.markdown(intro)
    if st.session_state.get("sb.upload_error"):
        st.error(f"Your upload could not be used: {st.session_state['sb.upload_error']} "
                 "The previous image is still in use.", icon=":material/error:")
    return ctx


class Progress:
    """A progress bar that long computations (also inside ``st.cache_data``) can update.

    Updates run in a copy of the context taken outside the cached function, so they are
    not recorded for cache replay; each update is also the point where a widget change
    interrupts the run (Streamlit stops the script there), which is how long work gets
    cancelled.
    """

    def __init__(self, text: str, container=None):
        self._context = contextvars.copy_context()
        self.text = text
        self.bar = (container or st).progress(0.0, text=text)
        self._last = 0.0
        self._start = time.perf_counter()

    def __call__(self, done, total) -> None:
        now = time.perf_counter()
        if now - self._last < 0.2 and done < total:
            return
        self._last = now
        frac = float(min(max(done / total, 0.0), 1.0)) if total else 1.0
        label = f"{self.text} — {frac:.0%}"
        self._context.run(self.bar.progress, frac, text=label)

    def clear(self) -> None:
        self._context.run(self.bar.empty)


def run(text: str, fn, *args, **kwargs):
    """Call ``fn(*args, _progress=bar, **kwargs)`` with a progress bar; clear it afterwards.

    Bad settings raise ``ValueError`` subclasses with plain messages: they are shown as an
    error in the page and ``None`` is returned, so the session keeps working.
    """
    bar = Progress(text)
    try:
        return fn(*args, _progress=bar, **kwargs)
    except torch.cuda.OutOfMemoryError:  # pragma: no cover - GPU only
        st.error("The GPU ran out of memory for this request; lower T, the EOT samples or the "
                 "resolution.", icon=":material/memory:")
    except MemoryError:
        st.error("This request needs more memory than the machine has; lower T, the EOT samples "
                 "or the working resolution.", icon=":material/memory:")
    except ValueError as e:
        st.error(str(e), icon=":material/error:")
    finally:
        bar.clear()
    return None


def provenance(ctx: Context, elapsed: float, device: str, seed, settings_text: str) -> None:
    """The one line every result carries: time, device, seed, settings, image, model."""
    st.caption(f":material/timer: {elapsed:.2f} s on {device} · seed {seed} · {settings_text} · "
               f"image *{ctx.image_name}* at {ctx.size}×{ctx.size} · model {ctx.model_label}")


def exports(stem: str, key: str, png=None, csv: str | None = None, json_text: str | None = None,
            extra_png: tuple | None = None) -> None:
    """Download buttons: PNG figure(s) (rendered on click), CSV and JSON (settings + numbers).

    ``extra_png`` is an optional ``(label, data_or_callable, file_suffix)`` for a second figure.
    """
    cols = st.columns(4 if extra_png else 3)
    i = 0
    if png is not None:
        cols[i].download_button("PNG figure", data=png, file_name=f"{stem}.png", mime="image/png",
                                key=f"{key}_png", icon=":material/image:", on_click="ignore")
        i += 1
    if extra_png:
        label, data, suffix = extra_png
        cols[i].download_button(label, data=data, file_name=f"{stem}_{suffix}.png", mime="image/png",
                                key=f"{key}_png2", icon=":material/show_chart:", on_click="ignore")
        i += 1
    if csv is not None:
        cols[i].download_button("CSV numbers", data=csv, file_name=f"{stem}.csv", mime="text/csv",
                                key=f"{key}_csv", icon=":material/table:", on_click="ignore")
        i += 1
    if json_text is not None:
        cols[i].download_button("JSON (settings + results)", data=json_text, file_name=f"{stem}.json",
                                mime="application/json", key=f"{key}_json", icon=":material/data_object:",
                                on_click="ignore")


def run_gate(page_key: str, key, label: str, help: str) -> bool:
    """A primary "run" button for long work; results stay shown while the settings match a
    run of this session (the numbers come from the cache, so showing them again is instant)."""
    done = st.session_state.setdefault(f"{page_key}.done", set())
    clicked = st.button(label, type="primary", key=f"{page_key}_run", help=help, icon=":material/play_arrow:")
    requested = st.session_state.pop(f"{page_key}.go", False)
    return bool(clicked or requested or key in done)


def mark_done(page_key: str, key) -> None:
    """Remember that ``key``'s run succeeded (see :func:`run_gate`)."""
    st.session_state.setdefault(f"{page_key}.done", set()).add(key)


def request_run(page_key: str, updates: dict) -> None:
    """Callback for "try this" buttons: change settings and run with them right away."""
    for k, v in updates.items():
        set_setting(f"{page_key}_{k}", v)
    st.session_state[f"{page_key}.go"] = True


def noise_preview_image(ctx: Context, sigma: float, noise: str = "gaussian", container=None) -> None:
    """Next to a σ slider: the image with one noise draw at that σ."""
    c = container or st
    c.image(_noise_preview(ctx.image_digest, ctx.size, float(sigma), noise, ctx.x), width="stretch",
            caption=f"one noise draw at σ = {sigma:g}")


@st.cache_data(show_spinner=False, max_entries=128)
def _noise_preview(digest: str, size: int, sigma: float, noise: str, _x):
    return S.noise_preview(_x, sigma, noise)


def sigma_slider(ctx: Context, container, key: str, default: float = 0.15, noise: str = "gaussian"):
    """A σ slider with the image under one noise draw at that σ beside it."""
    left, right = container.columns([3, 1.2])
    sigma = widget(left.slider, "Noise level σ (pixel units; images are in [0, 1])", key, default,
                   min_value=0.01, max_value=0.5, step=0.01,
                   help="Standard deviation of the noise added to every pixel value. 0.15 ≈ 38/255.")
    left.caption(f"σ = {sigma:g} ≈ {sigma * 255:.0f}/255 per pixel value")
    noise_preview_image(ctx, sigma, noise, right)
    return sigma


def cells_options(size: int) -> list[int]:
    """Cell sizes that make sense at this working resolution."""
    return [c for c in (1, 2, 4, 8, 16, 32) if c <= max(1, size // 3)]


def cell_label(c: int) -> str:
    return "pixels" if c == 1 else f"{c}×{c} px patches"


def settings_dict(obj) -> dict:
    from dataclasses import asdict
    d = asdict(obj)
    return {k: (v if not (isinstance(v, float) and math.isinf(v)) else "inf") for k, v in d.items()}


def figure(fig, key: str, caption: str) -> None:
    """A plotly figure with its one-line caption."""
    st.plotly_chart(fig, key=key, config={"displaylogo": False, "scrollZoom": False,
                                          "modeBarButtonsToRemove": ["select2d", "lasso2d"]})
    st.caption(caption)


def opacity_slider(key: str, default: float = 0.6, container=None) -> float:
    c = container or st
    return widget(c.slider, "Overlay opacity", key, default, min_value=0.0, max_value=1.0, step=0.05,
                  help="0 shows only the image, 1 only the map.")


def maps_png(ctx: Context, panels: list[dict], cell: int, opacity: float, footer: str, title: str | None = None):
    """A callable rendering ``panels`` to PNG (on click, off the script thread)."""
    picture = ctx.picture

    def render() -> bytes:
        return P.maps_png(picture, panels, cell, opacity=opacity, suptitle=title, footer=footer)
    return render


@st.cache_data(show_spinner=False, max_entries=64)
def thumbnail(name: str) -> np.ndarray:
    """A square 160-px thumbnail of a bundled sample."""
    return S.working_image(to_tensor(_load_sample(name), 160))


# -------------------------------------------------------------------- cached results

# Entry limits keep the cache within a few hundred MB (a 224×224 pixel-cell map with its
# statistics is ~2 MB).
@st.cache_data(show_spinner=False, max_entries=96)
def cached_map(model_key: str, digest: str, size: int, settings: S.MapSettings, _model, _x, _progress=None):
    """:func:`rrs.session.compute_map`, cached by model, image, resolution and every setting."""
    return S.compute_map(_model, _x, settings, progress=_progress)


@st.cache_data(show_spinner=False, max_entries=256)
def cached_certificate(model_key: str, digest: str, size: int, settings: S.MapSettings, norm: float,
                       eta: float, _map_result):
    """:func:`rrs.session.certify_map` of a cached RRS map at one norm and η."""
    return S.certify_map(_map_result, norm=norm, eta=eta)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_attack(model_key: str, digest: str, size: int, method: str, settings: S.MapSettings,
                  attack: S.AttackSettings, _model, _x, _progress=None):
    """:func:`rrs.session.attack_method`, cached by every setting of the map and the attack."""
    return S.attack_method(_model, _x, method, settings, attack, progress=_progress)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_compare(model_key: str, digest: str, size: int, methods: tuple, ts: tuple, settings: S.MapSettings,
                   attack: S.AttackSettings, beta: float, norm: float, eta: float, _model, _x, _progress=None):
    """:func:`rrs.session.compare_vs_t`, cached by every parameter."""
    return S.compare_vs_t(_model, _x, list(methods), list(ts), settings, attack, beta=beta, norm=norm,
                          eta=eta, progress=_progress)


def metric(container, label: str, value, delta=None, help: str | None = None, good_up: bool | None = None):
    """``st.metric`` in the app's style: bordered; a delta is coloured only when it has a
    direction that is good or bad (``good_up``), otherwise shown as plain grey context."""
    if good_up is not None and isinstance(delta, str):
        lead = re.match(r"\s*([-+]?\d*\.?\d+)", delta)
        if lead and float(lead.group(1)) == 0.0:
            good_up = None          # no change: no arrow, no colour
    if good_up is None:
        container.metric(label, value, delta, delta_color="off", delta_arrow="off", help=help, border=True)
    else:
        container.metric(label, value, delta, delta_color="normal" if good_up else "inverse",
                         help=help, border=True)
