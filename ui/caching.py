"""Caches shared by every session of the app server.

Models are built once per server with ``st.cache_resource`` and shared read-only; images
and results are ``st.cache_data`` keyed by the model, the image digest, the working size and
the settings objects (frozen, so every field is part of the key). Arguments that start with
``_`` (the model, the tensor, the progress bar) are not hashed: the keys before them
identify them. Moving back to an earlier setting is therefore instant.

Pages call the un-prefixed wrappers (:func:`map_result`, :func:`certificate`,
:func:`attack`, :func:`compare`) with the page :class:`ui.sidebar.Context`.
"""
from __future__ import annotations

import gc
import threading
from collections import Counter, OrderedDict

import numpy as np
import streamlit as st
import torch

from rrs import models
from rrs.compute.memory import tune_allocator
from rrs.images import list_samples, load_image, load_sample, to_tensor
from rrs.settings import AttackSettings, CertifySettings, MapSettings

from . import compute as C
from . import jobs


# ----------------------------------------------------------------------------- models

_HEAP = {"frozen": False}
_HEAP_LOCK = threading.Lock()


def settle_heap() -> bool:
    """Once per server process, when the first model is loaded: move every object alive then
    (torch, plotly, the model: about 350 000) into the collector's permanent generation
    (``gc.freeze``). Streamlit runs a full collection after every script run
    (``runner.postScriptGC``); over the whole heap it took 0.1 s of held GIL, and 30 sessions
    finishing together kept the server's event loop — its health endpoint — waiting for
    seconds (the 30-session load test, ``tests/test_load.py``). Afterwards it walks only what the scripts made. Also sets
    the C allocator to give freed job memory back (:func:`rrs.compute.memory.tune_allocator`).
    Returns whether this call froze the heap."""
    with _HEAP_LOCK:
        if _HEAP["frozen"]:
            return False
        gc.collect()
        gc.freeze()
        tune_allocator()
        _HEAP["frozen"] = True
        return True


_LOADED: set = set()


@st.cache_resource(show_spinner="Loading the model …", max_entries=6)
def get_model(name: str) -> torch.nn.Module:
    """A registered model (:func:`rrs.models.load_model`), loaded once per server and shared
    read-only between sessions."""
    model = models.load_model(name)  # eval mode, no parameter gradients (rrs.models)
    settle_heap()
    _LOADED.add(name)
    return model


def model_loaded(key: str) -> bool:
    """Whether the registry model ``key`` has been loaded by this server (a user's model, or
    one evicted from the cache, may still take a moment)."""
    return key in _LOADED or key.startswith("user:")


@st.cache_resource(show_spinner="Loading your model …", max_entries=4)
def get_user_model(digest: str, arch: str, name: str, _data: bytes) -> torch.nn.Module:
    """A user's weights for a known architecture (``torch.load(weights_only=True)`` or
    safetensors, in :func:`rrs.models.load_user_model`)."""
    return models.load_user_model(_data, arch)


# ----------------------------------------------------------------------------- images

@st.cache_data(show_spinner=False, max_entries=8)
def load_upload(digest: str, name: str, _data: bytes):
    return load_image(_data, name=name)


@st.cache_data(show_spinner=False, max_entries=32)
def load_bundled(name: str):
    return load_sample(name)


@st.cache_data(show_spinner=False, max_entries=64)
def tensor(digest: str, size: int, resize: int, _loaded) -> torch.Tensor:
    """The model input: shorter side resized to ``resize``, centre ``size`` crop (the model's
    reference preprocessing, :meth:`rrs.models.Classifier.resize_for`)."""
    return to_tensor(_loaded, size, resize_size=resize)


@st.cache_data(show_spinner=False, max_entries=64)
def sample_digest(name: str) -> str:
    return C.image_digest(dict(list_samples())[name].read_bytes())


@st.cache_data(show_spinner=False, max_entries=64)
def thumbnail(name: str) -> np.ndarray:
    """A square 160-px thumbnail of a bundled sample."""
    return C.working_image(to_tensor(load_bundled(name), 160))


@st.cache_data(show_spinner=False, max_entries=128)
def _noise_preview(digest: str, size: int, sigma: float, noise: str, _x):
    return C.noise_preview(_x, sigma, noise)


def noise_preview(ctx, sigma: float, noise: str = "gaussian") -> np.ndarray:
    """The working image with one noise draw at ``sigma`` (standard deviation)."""
    return _noise_preview(ctx.image_digest, ctx.size, float(sigma), noise, ctx.x)


# ---------------------------------------------------------------------------- results

#: How many times each cached result was computed in this server process (a cache hit does
#: not count): a reload with the same settings must leave these unchanged.
COMPUTED: Counter = Counter()

#: The results this process has put in the cache: ``(kind, model key, image digest, size,
#: *settings)`` (a page says "ready" instead of a predicted time; an entry the cache later
#: evicted at its limit is still listed, and is then computed again).
_HELD: set = set()


#: A map's settings as asked → as it ran (the device's precision, T capped), which key what is
#: computed from the map (its certificate, its contrast).
_AS_RUN: dict = {}


def held(ctx, kind: str, *settings) -> bool:
    """Whether the result of ``kind`` (``"map"``, ``"attack"``, ``"certificate"``,
    ``"contrast"``) for these settings on the page's image was computed on this server (a
    certificate or a contrast: of the map these settings asked for)."""
    image = (ctx.model_key, ctx.image_digest, ctx.size)
    if kind in ("certificate", "contrast") and settings:
        settings = (_AS_RUN.get(image + settings[:1], settings[0]),) + settings[1:]
    return (kind,) + image + settings in _HELD


def _hold(value, *key):
    _HELD.add(key)
    return value

# Entry limits keep the cache within a few hundred MB (a 224×224 pixel-cell map with its
# statistics is ~2 MB).

@st.cache_data(show_spinner=False, max_entries=256)
def _predictions(model_key: str, digest: str, size: int, _model, _x, k: int):
    COMPUTED["predictions"] += 1
    return models.predict_topk(_model, _x, k=min(k, _model.num_classes))


def predictions(ctx, k: int = 5) -> list[tuple[int, str, float]]:
    """Top-``k`` ``(class id, name, probability)`` of the working image."""
    return _predictions(ctx.model_key, ctx.image_digest, ctx.size, ctx.model, ctx.x, k)


@st.cache_data(show_spinner=False, max_entries=96)
def _map(model_key: str, digest: str, size: int, settings: MapSettings, _model, _x, _progress=None):
    COMPUTED["map"] += 1
    result = jobs.run("map", C.compute_map, _model, _x, settings, progress=_progress)
    _AS_RUN[(model_key, digest, size, settings)] = result.settings
    return _hold(result, "map", model_key, digest, size, settings)


def map_result(ctx, settings: MapSettings, progress=None) -> C.MapResult:
    """:func:`ui.compute.compute_map` of the page's image, cached by every setting."""
    return _map(ctx.model_key, ctx.image_digest, ctx.size, settings, ctx.model, ctx.x, _progress=progress)


@st.cache_data(show_spinner=False, max_entries=256)
def _certificate(model_key: str, digest: str, size: int, settings: MapSettings, certify: CertifySettings,
                 _map_result, _model=None):
    COMPUTED["certificate"] += 1
    return _hold(jobs.certify(_model, _map_result, certify), "certificate", model_key, digest, size, settings, certify)


def certificate(ctx, map_result: C.MapResult, certify: CertifySettings) -> C.CertifyResult:
    """:func:`ui.compute.map_certificates` of a cached RRS map (keyed by the map's settings)."""
    return _certificate(ctx.model_key, ctx.image_digest, ctx.size, map_result.settings, certify, map_result,
                        _model=ctx.model)


@st.cache_data(show_spinner=False, max_entries=64)
def _attack(model_key: str, digest: str, size: int, settings: MapSettings, attack: AttackSettings,
            _model, _x, _progress=None):
    COMPUTED["attack"] += 1
    return _hold(jobs.run("attack", C.attack_method, _model, _x, settings, attack, progress=_progress, attack=attack),
                 "attack", model_key, digest, size, settings, attack)


def attack(ctx, settings: MapSettings, attack: AttackSettings, progress=None) -> C.MethodAttack:
    """:func:`ui.compute.attack_method` on the page's image, cached by every setting."""
    return _attack(ctx.model_key, ctx.image_digest, ctx.size, settings, attack, ctx.model, ctx.x,
                   _progress=progress)


@st.cache_data(show_spinner=False, max_entries=32)
def _contrast_at(model_key: str, digest: str, size: int, settings: MapSettings, radius: float, claimed: tuple,
                 norm: str, _map_result, _model, _x, _progress=None):
    COMPUTED["contrast"] += 1
    return _hold(jobs.contrast_at(_model, _x, _map_result, radius, claimed, norm, progress=_progress),
                 "contrast", model_key, digest, size, settings)


def contrast_at(ctx, map_result: C.MapResult, radius: float, claimed: tuple, norm, progress=None):
    """:func:`ui.compute.contrast_at` (the Learn page's two maps attacked at its certificate's
    radius), cached by the map's settings, the radius and the claimed cells: every session of
    a class gets it at once after the first."""
    return _contrast_at(ctx.model_key, ctx.image_digest, ctx.size, map_result.settings, float(radius),
                        tuple(int(c) for c in claimed), str(norm), map_result, ctx.model, ctx.x, _progress=progress)


@st.cache_data(show_spinner=False, max_entries=16)
def _compare(model_key: str, digest: str, size: int, methods: tuple, ts: tuple, settings: MapSettings,
             attack: AttackSettings, certify: CertifySettings, _model, _x, _progress=None):
    COMPUTED["compare"] += 1
    return jobs.run("compare", jobs.compare_job, _model, _x, settings, methods, ts, attack, certify,
                    progress=_progress, attack=attack)


def compare(ctx, methods, ts, settings: MapSettings, attack: AttackSettings, certify: CertifySettings,
            progress=None) -> dict:
    """:func:`ui.compute.compare_vs_t` on the page's image, cached by every parameter."""
    return _compare(ctx.model_key, ctx.image_digest, ctx.size, tuple(methods), tuple(sorted(ts)), settings,
                    attack, certify, ctx.model, ctx.x, _progress=progress)


# ------------------------------------------------------------------ anytime certification

@st.cache_resource(show_spinner=False)
def certify_store() -> dict:
    """Completed anytime runs of the Certify page (:class:`rrs.workflows.certify.Sampled`), shared by the
    server's sessions, keyed by the page's run key (model, image, size, settings, scheme);
    the 32 most recent are kept."""
    return {}


_STORE_LOCK = threading.Lock()


def keep_run(key, sampled) -> None:
    store = certify_store()
    with _STORE_LOCK:  # shared by every session's script thread
        store.pop(key, None)
        store[key] = sampled
        while len(store) > 32:
            store.pop(next(iter(store)))


@st.cache_resource(show_spinner=False, max_entries=128)  # frozen and read-only: no copy per hit
def _anytime_view(key, samples_done: int, certify: CertifySettings, _sampled):
    from rrs.workflows.certify import certify_sampled
    return certify_sampled(_sampled, certify)


def anytime_view(key, sampled, certify: CertifySettings):
    """:func:`rrs.workflows.certify.certify_sampled`, cached by the run key, the samples reached and
    the certificate settings (a norm or η change re-certifies without sampling again)."""
    return _anytime_view(key, sampled.samples_done, certify, sampled)


# ------------------------------------------------------------------ reloads and reconnects
# A reload or a dropped connection starts a new Streamlit session with an empty
# ``st.session_state``. The URL carries the image, the model and a session token
# (:mod:`ui.state`); these two server-wide stores give back what the token and the image
# digest name. Both are bounded (least recently used entries go first).

UPLOADS_KEPT = 50
SESSIONS_KEPT = 200
_LRU_LOCK = threading.Lock()


@st.cache_resource(show_spinner=False)
def _uploads() -> OrderedDict:
    return OrderedDict()


@st.cache_resource(show_spinner=False)
def _sessions() -> OrderedDict:
    return OrderedDict()


def _lru_put(store: OrderedDict, key, value, limit: int) -> None:
    with _LRU_LOCK:  # shared by every session's script thread
        store.pop(key, None)
        store[key] = value
        while len(store) > limit:
            store.popitem(last=False)


def _lru_get(store: OrderedDict, key):
    with _LRU_LOCK:
        value = store.get(key)
        if value is not None:
            store.move_to_end(key)
        return value


def keep_upload(digest: str, name: str, data: bytes, size: tuple) -> None:
    """Remember a valid upload by its digest (the 50 most recent), for ``?image=upload:<digest>``."""
    _lru_put(_uploads(), digest, {"name": name, "digest": digest, "data": data, "size": tuple(size)},
             UPLOADS_KEPT)


def stored_upload(digest: str) -> dict | None:
    """A remembered upload (``name``, ``digest``, ``data``, ``size``), or None."""
    return _lru_get(_uploads(), digest)


def save_session(token: str, values: dict) -> dict:
    """Store a session's persistent state under ``token`` (the 200 most recent sessions);
    returns the stored dict, which :func:`ui.state.widget` keeps up to date."""
    _lru_put(_sessions(), token, values, SESSIONS_KEPT)
    return values


def saved_session(token: str) -> dict | None:
    """The state last stored under ``token``, or None (unknown, or evicted)."""
    return _lru_get(_sessions(), token)
