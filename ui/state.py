"""The app's per-session state: ``st.session_state`` keys, settings kept across pages, the
"fast" preset, run gates and uploads.

Keys are prefixed by their page (``explain_…``, ``certify_…``, ``attack_…``, ``compare_…``,
``learn_…``; ``sb_…`` for sidebar widgets, ``sb.…`` for sidebar state that is not a widget),
so pages never share state by accident. Streamlit forgets a widget's value when its page is
not shown; :func:`widget` mirrors every value under ``keep.<key>`` and restores it.
"""
from __future__ import annotations

import streamlit as st

from rrs.images import ImageError

from . import caching
from .compute import image_digest

PAGE = "sb.page"                  # the title of the page drawn last
PAGE_CHANGED = "sb.page_changed"  # this run draws a different page than the last run
KEEP = "keep."

#: Page settings that the "fast" preset changes: key -> (normal, fast).
PRESET = {
    "explain_samples": (16, 8),
    "explain_cell": (8, 16),
    "certify_samples": (1024, 128),
    "certify_cell": (32, 32),
    "attack_samples": (32, 16),
    "attack_cell": (16, 16),
    "attack_steps": (10, 5),
    "attack_eot": (4, 2),
    "compare_ts": ([1, 2, 4, 8, 16], [1, 2, 4, 8]),
    "compare_steps": (5, 3),
    "compare_eot": (2, 1),
    "compare_cell": (16, 16),
}


def enter_page(title: str) -> None:
    """Record which page this run draws (a page switch restores kept settings)."""
    st.session_state[PAGE_CHANGED] = st.session_state.get(PAGE) != title
    st.session_state[PAGE] = title


def preset_default(key: str, default=None):
    """The default of ``key`` under the current preset (``default`` for keys not in it)."""
    if key in PRESET:
        normal, fast = PRESET[key]
        return fast if st.session_state.get(KEEP + "sb_fast", False) else normal
    return default


def apply_preset(fast: bool) -> None:
    """Set every preset-controlled page setting to its normal or fast value, once per change
    of the toggle (not as an ``on_change`` callback, which could read the toggle of the page
    the user just left)."""
    if fast == st.session_state.get("sb.fast_applied", False):
        return
    for key, (normal, fast_value) in PRESET.items():
        set_setting(key, fast_value if fast else normal)
    st.session_state["sb.fast_applied"] = fast


def set_setting(key: str, value) -> None:
    """Change a page setting from code (e.g. a "try this" button's callback)."""
    st.session_state[KEEP + key] = value
    st.session_state[key] = value


def widget(fn, label: str, key: str, default=None, *, options=None, **kwargs):
    """Create a widget whose value survives page switches.

    A sidebar widget is a different widget on every page (each page script draws its own
    sidebar), so the value is mirrored under ``keep.<key>`` and restored before the widget
    is created on a page that was not the last one shown. ``fn`` is e.g. ``st.slider`` or
    ``column.selectbox``; ``options`` is passed on and used to reject a remembered value that
    is no longer valid.
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


# ---------------------------------------------------------------------------- run gates

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


# ------------------------------------------------------------------------------ uploads

def use_samples() -> None:
    """Go back from an upload to the bundled sample chosen in the sidebar (a pending upload
    error is about an image no longer in question, so it goes too)."""
    st.session_state["sb.source"] = "sample"
    st.session_state.pop("sb.upload_error", None)


def use_previous_upload() -> None:
    """Make the last good upload the image again (after a bad file or a sample pick)."""
    if st.session_state.get("sb.upload"):
        st.session_state["sb.source"] = "upload"
    st.session_state.pop("sb.upload_error", None)


def upload_error() -> dict | None:
    """The pending upload error: ``name`` (the refused file) and ``why``, or None."""
    err = st.session_state.get("sb.upload_error")
    if err is None:
        return None
    return err if isinstance(err, dict) else {"name": "the file", "why": str(err)}


def use_sample(name: str) -> None:
    """Make the bundled sample ``name`` the image (the sidebar picker follows)."""
    set_setting("sb_sample", name)
    use_samples()


def process_upload(up) -> None:
    """Validate a new image upload; on success it becomes the image, on failure the old one
    stays and ``sb.upload_error`` says why.

    The uploader is a new, empty widget on every page; the upload stays in use across pages
    and only counts as removed when the user clears it on the page where it was made."""
    if st.session_state.get(PAGE_CHANGED):
        st.session_state["sb.upload_id"] = None
    if up is None:
        if st.session_state.get("sb.upload_id") is not None:
            # the user removed the file: go back to the samples
            st.session_state["sb.upload_id"] = None
            st.session_state.pop("sb.upload_error", None)
            use_samples()
        return
    if up.file_id == st.session_state.get("sb.upload_id"):
        return
    st.session_state["sb.upload_id"] = up.file_id
    data = up.getvalue()
    digest = image_digest(data)
    try:
        loaded = caching.load_upload(digest, up.name, data)
    except ImageError as e:
        st.session_state["sb.upload_error"] = {"name": up.name, "why": str(e)}
        return
    st.session_state.pop("sb.upload_error", None)
    st.session_state["sb.upload"] = {"name": up.name, "digest": digest, "data": data,
                                     "size": tuple(loaded.size)}
    st.session_state["sb.source"] = "upload"


def upload_in_use() -> dict | None:
    """The upload that is the current image (``name``, ``digest``, ``data``), or None."""
    upload = st.session_state.get("sb.upload")
    return upload if st.session_state.get("sb.source") == "upload" and upload else None


def process_user_weights() -> None:
    """Callback (runs before the script, so it may switch the model picker): load the
    uploaded weights for the chosen architecture, or keep the current model and say why."""
    f = st.session_state.get("sb_user_file")
    arch = st.session_state.get("sb_user_arch")
    if f is None or arch is None:
        st.session_state.pop("sb.user_error", None)
        return
    data = f.getvalue()
    digest = image_digest(data)
    try:
        caching.get_user_model(digest, arch, f.name, data)
    except (ValueError, RuntimeError, OSError) as e:
        st.session_state["sb.user_error"] = f"{f.name}: {e}"
        return
    st.session_state.pop("sb.user_error", None)
    key = f"user:{digest}:{arch}"
    st.session_state["sb.user_model"] = {"key": key, "name": f.name, "arch": arch, "digest": digest, "data": data}
    set_setting("sb_model", key)


def user_model() -> dict | None:
    """The user's uploaded model (``key``, ``name``, ``arch``, ``digest``, ``data``), or None."""
    return st.session_state.get("sb.user_model")
