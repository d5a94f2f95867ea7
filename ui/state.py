"""The app's per-session state: ``st.session_state`` keys, settings kept across pages, the
"fast" preset, run gates and uploads.

Keys are prefixed by their page (``explain_…``, ``certify_…``, ``attack_…``, ``compare_…``,
``learn_…``; ``sb_…`` for sidebar widgets, ``sb.…`` for sidebar state that is not a widget),
so pages never share state by accident. Streamlit forgets a widget's value when its page is
not shown; :func:`widget` mirrors every value under ``keep.<key>`` and restores it.

A reload or a reconnect starts a new session with an empty state: :func:`resume` restores
it from the URL (``?image=…&model=…&fast=1&s=<token>``, written by :func:`mirror_url`) and the
server-side store the token names (:func:`ui.caching.saved_session`). What is kept is every
key with a dot (``keep.…`` widget values, ``sb.upload``, finished runs such as
``attack.done`` or ``certify.runs``) except the per-run ones in :data:`VOLATILE`.
"""
from __future__ import annotations

import copy
import re
import secrets
import time

import streamlit as st

from rrs.images import ImageError

from . import caching
from .compute import image_digest

PAGE = "sb.page"                  # the title of the page drawn last
PAGE_CHANGED = "sb.page_changed"  # this run draws a different page than the last run
KEEP = "keep."
TOKEN = "sb.token"                # this session's key in the server's session store (URL ``s``)
UPLOAD_NONCE = "sb.upload_nonce"  # bumped after each processed upload: a new, empty widget

#: State that belongs to one run or one connection and is never restored after a reload
#: (a pending "run now" request would start work the user did not ask for again).
VOLATILE = {PAGE, PAGE_CHANGED, TOKEN, "sb.upload_error", "sb.user_error", "home.picked", "certify.go"}

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
    _remember(KEEP + key, value)


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
    _remember(KEEP + key, result)
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


def upload_key() -> str:
    """The image uploader's widget key: a new key (a new, empty widget) after every
    processed file, so a refused file's name never stays in the widget and picking the same
    file again is a new upload."""
    n = int(st.session_state.get(UPLOAD_NONCE, 0))
    return "sb_upload" if n == 0 else f"sb_upload{n}"


def process_upload(key: str) -> None:
    """Callback of the image uploader (runs before the script): validate the new file; on
    success it becomes the image, on failure the image in use stays (the previous upload or
    the sample) and ``sb.upload_error`` says why. Either way the uploader is emptied.

    One rule for every refused file: too large (in bytes or pixels), not an image, too
    small. The uploader is only an inbox; the sidebar's "Use the sample" button goes back to
    the samples. (A file over ``server.maxUploadSize`` never reaches the app: the widget
    shows its own message and the image in use stays as well.)"""
    up = st.session_state.get(key)
    if up is None:
        return
    st.session_state[UPLOAD_NONCE] = int(st.session_state.get(UPLOAD_NONCE, 0)) + 1
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
    caching.keep_upload(digest, up.name, data, tuple(loaded.size))


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


# ------------------------------------------------------------------ reloads and reconnects

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _persistent(key: str) -> bool:
    return "." in key and key not in VOLATILE and not key.endswith(".go")


def _remember(key: str, value) -> None:
    """Write one persistent value through to this session's server-side store."""
    token = st.session_state.get(TOKEN)
    saved = caching.saved_session(token) if token else None
    if saved is not None:
        saved[key] = value


def _restore_image(image: str | None, samples: list[str]) -> None:
    if not image:
        return
    if image.startswith("upload:"):
        up = caching.stored_upload(image.removeprefix("upload:"))
        if up is not None:
            st.session_state["sb.upload"] = dict(up)
            st.session_state["sb.source"] = "upload"
    elif image in samples:
        st.session_state[KEEP + "sb_sample"] = image
        st.session_state["sb.source"] = "sample"


def resume(samples: list[str]) -> None:
    """At the start of every run: on a session's first run (a new tab, a reload, a
    reconnect), restore the state saved under the URL's token ``s``, then the image
    (``image=<sample>`` or ``image=upload:<digest>``) and ``model`` the URL names; on later
    runs, save the persistent state under this session's token.

    A restored session gets a token of its own (a shared link never ties two sessions
    together); containers are copied for the same reason."""
    token = st.session_state.get(TOKEN)
    if token is None:
        params = st.query_params
        old = params.get("s", "")
        saved = caching.saved_session(old) if _TOKEN_RE.match(old or "") else None
        for k, v in (saved or {}).items():
            if k not in st.session_state:
                st.session_state[k] = copy.copy(v) if isinstance(v, (dict, set, list)) else v
        _restore_image(params.get("image"), samples)
        if params.get("model"):
            st.session_state[KEEP + "sb_model"] = params.get("model")
        if params.get("fast") == "1" and KEEP + "sb_fast" not in st.session_state:
            st.session_state[KEEP + "sb_fast"] = True      # a class's link opens in the fast preset
        token = secrets.token_urlsafe(12)
        st.session_state[TOKEN] = token
    caching.save_session(token, {k: v for k, v in st.session_state.to_dict().items() if _persistent(k)})


def mirror_url(image_name: str, image_digest: str, source: str, model_key: str, fast: bool = False) -> None:
    """Write the image, the model, the fast preset (``fast=1`` when on) and the session token
    into the URL (only what changed: each write is a message to the browser)."""
    want = {"image": f"upload:{image_digest}" if source == "upload" else image_name,
            "model": model_key, "s": st.session_state[TOKEN]}
    if fast:
        want["fast"] = "1"
    elif "fast" in st.query_params:
        del st.query_params["fast"]
    for k, v in want.items():
        if st.query_params.get(k) != v:
            st.query_params[k] = v


# ------------------------------------------------------------------ the page's own time

def page_started() -> None:
    """The script run of a page starts (:func:`ui.sidebar.page`): :func:`page_seconds` counts
    from here."""
    st.session_state["page.started"] = time.perf_counter()
    st.session_state["page.not_drawing"] = 0.0


def not_drawing(seconds: float) -> None:
    """``seconds`` of this run went to a job or a measurement, not to drawing the page."""
    st.session_state["page.not_drawing"] = st.session_state.get("page.not_drawing", 0.0) + float(seconds)


def page_seconds() -> float:
    """Seconds this run of the page spent drawing so far (its jobs and one-time measurements
    left out): what it takes again, once a step further down is clicked, before that step's
    job starts (Learn's step 3 started its 2-s attack 1.2 s after the click, below steps 1
    and 2 drawn again)."""
    started = st.session_state.get("page.started")
    if started is None:
        return 0.0
    return max(time.perf_counter() - started - st.session_state.get("page.not_drawing", 0.0), 0.0)
