"""What every study job shares: the job-kind schemas, stable keys and seeds, the study methods'
map settings, and loading a job's model and image (:mod:`rrs.study.jobs` builds and runs the
grid; :mod:`rrs.study.strength` and :mod:`rrs.study.worth` add job kinds on top of these)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from ..settings import MapSettings
from .config import EvalConfig, EvaluationError
from .inputs import get_image, get_model

__all__ = ["SCHEMAS", "job_key", "derive_seed", "map_settings", "seeded", "base_job", "prepare"]

#: Per job kind: bump when a job's meaning changes, so stored results of the old meaning are not
#: reused. Floor/attack/accuracy 3 and certify 2: noise seeds ``s``/``s + 1`` from MapSettings.seed
#: (rrs.floor) and settings dicts in the job; speed 2: rows from ``bench.*.measure``.
SCHEMAS = {"floor": 3, "attack": 3, "accuracy": 3, "certify": 2, "speed": 2, "gradvar": 1, "convergence": 1,
           "scheme": 1, "profile": 1}


def job_key(params: dict) -> str:
    """Stable 16-hex-digit key of a job's parameters (same parameters → same file)."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def derive_seed(*parts) -> int:
    """A 63-bit seed from any JSON-serialisable parts (stable across processes and machines)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big") & (2 ** 63 - 1)


# ------------------------------------------------------------------------------ grid

def map_settings(cfg: EvalConfig, method: str, cell: int, T: int, seed: int = 0) -> MapSettings:
    """The map settings of a study method (``vanilla``, ``smoothgrad``, ``sparsified``,
    ``rrs-topk`` = RRS with top-k′ uniform scoring, k′ = ⌈n/10⌉, ``rrs-exp`` = RRS with
    exponential scoring of decay length k cells). Vanilla always has T = 1."""
    common = dict(base="vanilla", noise="gaussian", sigma=cfg.sigma, cell=int(cell), k=cfg.k_fraction,
                  seed=int(seed))
    if method == "vanilla":
        return MapSettings(method="vanilla", samples=1, **common)
    if method == "rrs-topk":
        return MapSettings(method="rrs", samples=int(T), scoring="topk", scoring_param=0.1, **common)
    if method == "rrs-exp":
        return MapSettings(method="rrs", samples=int(T), scoring="exponential", scoring_param=cfg.k_fraction,
                           **common)
    if method in ("smoothgrad", "sparsified"):
        return MapSettings(method=method, samples=int(T), tau=0.1, phi=0.01, **common)
    raise EvaluationError(f"unknown study method {method!r}")


def seeded(cfg: EvalConfig, image: str, method: str, settings: MapSettings, *salt) -> MapSettings:
    """``settings`` with its noise seed derived from the base seed and everything else."""
    seed = derive_seed(cfg.base_seed, "map", cfg.model, image, method, settings.replace(seed=0).to_dict(), *salt)
    return settings.replace(seed=seed)


def base_job(cfg: EvalConfig, kind: str, image: str, method: str) -> dict:
    return {"kind": kind, "schema": SCHEMAS[kind], "model": cfg.model, "image": image, "method": method,
            "base_seed": cfg.base_seed}


def prepare(job: dict, device: str, image_array=None):
    """Model, image ``(3, S, S)`` on the model's device, predicted class ``(1,)`` and settings."""
    from ..smoothing import model_device, predict_target
    model = get_model(job["model"], device)
    x = (torch.from_numpy(np.asarray(image_array, dtype=np.float32).copy()) if image_array is not None
         else get_image(model, job["image"])).to(model_device(model))
    return model, x, predict_target(model, x[None]), MapSettings.from_dict(job["map"])


