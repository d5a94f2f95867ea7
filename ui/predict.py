"""How long a job of the app will take: per job kind (maps, attacks, certificates, robustness
profiles), fitted to the jobs finished on this device on top of the sample rates of
:mod:`rrs.compute.policy`, under the app's caps on T and EOT (:mod:`ui.budgets`); and the
"predicted …" / "… left" texts the pages show. Plain Python (no streamlit)."""
from __future__ import annotations

import threading
import time

import numpy as np

from rrs.attributions import cell_grid
from rrs.compute import device as D
from rrs.compute.policy import batch_size_for, calibrate
from rrs.settings import MapSettings
from rrs.timing import format_seconds, sample_key

from .budgets import plan_eot, plan_samples

__all__ = ['predict_map', 'record_map', 'attack_map_samples', 'attack_work', 'predict_attack', 'record_robustness', 'predict_robustness', 'record_attack', 'predict_certificate', 'record_certificate', 'predict_anytime_certificates', 'record_anytime_certificates', 'clear_measured', 'remaining_text', 'predicted_text', 'ATTACK_STEP_FIXED', 'ATTACK_SECOND_ORDER']

# Per model, input size, attribution, precision and device (rrs.timing.sample_key), two kinds
# of measured work: batched noisy gradient samples (every map records its rate in
# rrs.timing.RATES), and attack steps. A step costs a fixed part (the real model's label
# check, the step's bookkeeping) plus a part per EOT sample of the second-order surrogate
# gradient; both are fitted to the attacks finished on this device (:func:`record_attack`),
# so the Attack page, Compare and Learn predict from what this machine did.

#: The prior's split of an attack step (:func:`_attack_pilot` measures its scale before any attack
#: ran here): ATTACK_STEP_FIXED batched noisy samples plus ATTACK_SECOND_ORDER per EOT sample (a
#: raw method's step is one EOT sample). Measured on EfficientNet-Lite0 at 224 px (CPU, one
#: thread: a batched sample 0.13 s; a vanilla step 0.58 s; an RRS step with 4 EOT samples
#: 2.6 s). The tiny CNN's steps are mostly fixed cost (18 and 3.3 samples); the fit to its
#: attacks corrects that.
ATTACK_STEP_FIXED = 1.0
ATTACK_SECOND_ORDER = 4.4
#: Before any Certify run here: seconds to certify one checkpoint, per cell of the map.
#: Measured on this 2-core CPU (EfficientNet-Lite0 at 224 px, 32-px cells = 49 cells, the
#: selection scheme): the first checkpoint's view 0.65–0.9 s, the fifth's 4.3 s (it replays
#: five); 11 s of a T = 1024 run's 81 s, 2.7 s of a T = 128 run's 11.5 s.
CERTIFY_CELL_SECONDS = 0.015
# Every prediction and record first resolves ``settings`` to the precision its job runs in
# (rrs.compute.device.resolve, as ui.jobs.run does), so a predicted rate and the finished jobs
# it is fitted to are of one precision; the first call per model measures bf16 against fp32
# once (Explain's first map was predicted at 2 s from the fp32 rate and took 10 s, the check
# included).
_STEPS: dict = {}
_STEPS_LOCK = threading.Lock()


def _map_key(model, x, settings) -> tuple:
    return ("map", settings.smoothed) + sample_key(model, x, settings)


#: Per sample key: seconds per pass of the model, seconds per noisy sample in a pass, and the
#: samples of a full pass (:func:`_passes`).
_PASSES: dict = {}


def _warm(run, most: int = 6, agree: float = 0.15) -> float:
    """Seconds of ``run()`` once warm: run until two runs in a row agree within ``agree`` (at
    most ``most`` runs); the faster of those two. A new shape's first passes are slow on a CPU
    (allocation, kernel selection): EfficientNet-Lite0 at 224 px, passes of 8 noisy samples took
    1.54, 0.54, 0.32, 0.32 s and then passes of 16 took 2.49, 0.83, 0.59, 0.59 s, so a pilot of
    one warm-up and one measured pass predicted maps 3× too long and attacks 2× too long."""
    last = None
    for _ in range(int(most)):
        t0 = time.perf_counter()
        run()
        t = time.perf_counter() - t0
        if last is not None and abs(t - last) <= agree * min(t, last):
            return min(t, last)
        last = t
    return float(last)


def _passes(model, x, settings) -> tuple[float, float, int]:
    """``(seconds per pass, seconds per sample, samples per pass)`` of ``settings``'s noisy
    samples here, from two warm pilots (:func:`_warm`: a full pass, then half a pass), measured
    once. A pass is not proportional to its samples: on EfficientNet-Lite0 at 224 px (bf16, a
    2-core CPU) a pass of 8 samples took 0.77 s and one of 16 took 1.07 s, so the rate of a short
    map (one pass of 8) predicted a T = 256 map at 28 s that took 19 s. The full pass goes first:
    once its buffers exist, half a pass is warm at once."""
    key = sample_key(model, x, settings)
    with _STEPS_LOCK:
        got = _PASSES.get(key)
    if got is not None:
        return got
    full = D.batch_size(model, x, settings.attribution, batch_size_for(x, settings.attribution))
    half = max(1, full // 2)
    t_full = _warm(lambda: calibrate(model, x, settings, samples=full, batch_size=full))
    t_half = _warm(lambda: calibrate(model, x, settings, samples=half, batch_size=half)) if full > half else t_full
    per = max(t_full - t_half, 0.0) / (full - half) if full > half else t_full / full
    # a full pass is predicted at its measured time: timing noise that puts the half pass too low
    # (a pass of the tiny model takes milliseconds) makes no negative part per pass, whose
    # clipping at 0 overpredicted T = 2048 by 1.3–1.4×
    per = min(per, t_full / full)
    got = (t_full - per * full, per, int(full))
    with _STEPS_LOCK:
        _PASSES[key] = got
    return got


def _gradient_seconds(model, x, settings) -> float:
    """Seconds of one gradient of the image (a raw map), warm (:func:`_warm`), measured once."""
    key = ("gradient",) + sample_key(model, x, settings)
    with _STEPS_LOCK:
        got = _PASSES.get(key)
    if got is None:
        got = _warm(lambda: calibrate(model, x, settings, samples=1, batch_size=1))
        with _STEPS_LOCK:
            _PASSES[key] = got
    return got


def _sampling_seconds(model, x, settings, samples: int) -> float:
    """Seconds of ``samples`` noisy samples in full passes and a last partial one (:func:`_passes`)."""
    per_pass, per_sample, full = _passes(model, x, settings)
    return -(-int(samples) // full) * per_pass + int(samples) * per_sample


def predict_map(model, x, settings) -> float:
    """Seconds to compute the map ``settings`` describes: a fixed part per map and its noisy
    samples (:func:`_sampling_seconds`), fitted to the maps finished on this device
    (:func:`record_map`), or from the measured passes before any (a smoothed map's fixed part:
    the raw map it is shown beside, one gradient of the image, :func:`ui.compute.compute_map`)."""
    settings = D.resolve(model, x, settings)
    if not settings.smoothed:
        fixed, per = _fit(_map_key(model, x, settings), 0.0, _gradient_seconds(model, x, settings), measured=True)
        return fixed + per
    sampling = _sampling_seconds(model, x, settings, plan_samples(settings.samples, model)[0])
    fixed, scale = _fit(_map_key(model, x, settings), predict_map(model, x, _raw(settings)), 1.0, measured=True)
    return fixed + scale * sampling


def _raw(settings):
    """The raw map a smoothed map of ``settings`` smooths (one gradient, at full precision)."""
    return MapSettings(method=settings.attribution, cell=settings.cell, k=settings.k, ig_steps=settings.ig_steps,
                       seed=settings.seed)


def record_map(model, x, settings, seconds: float) -> None:
    """Record a finished (not cached) map for the next predictions of maps of this kind."""
    settings = D.resolve(model, x, settings)
    units = _sampling_seconds(model, x, settings, plan_samples(settings.samples, model)[0]) \
        if settings.smoothed else 1
    _observe(_map_key(model, x, settings), 1, units, seconds)


def attack_map_samples(settings) -> int:
    """Noisy samples an attack spends on maps besides its steps: the clean map (seed s), the
    attacked map at s + 1, the attacked map at s (the best iterate's check) and the floor's
    second clean map (s + 1); a raw method's maps are one gradient each and its floor reuses
    the clean map."""
    return 4 * settings.samples if settings.smoothed else 3


def _attack_maps(model, x, settings) -> float:
    """Seconds of an attack's maps (:func:`attack_map_samples`: four maps of T samples, or
    three gradients)."""
    return (4 if settings.smoothed else 3) * predict_map(model, x, settings)


def attack_work(model, x, settings, attack) -> tuple[int, int]:
    """The two counts an attack's step time is linear in. A smoothed method: ``(steps, EOT
    samples)``, steps × restarts and the EOT samples of all its steps (capped as the attack
    caps them, :func:`ui.budgets.plan_eot`). A raw method (one sample per step): ``(1,
    steps)``, a fixed part per attack (its setup and label checks) and a part per step."""
    steps = attack.steps * attack.restarts
    if not settings.smoothed:
        return 1, steps
    return steps, steps * plan_eot(attack.eot, x, model)[0]


def _capped(model, x, settings):
    """``settings`` as the attack runs them: T capped, at the precision of the run."""
    settings = D.resolve(model, x, settings)
    return settings.replace(samples=plan_samples(settings.samples, model)[0]) if settings.smoothed else settings


def _attack_key(model, x, settings) -> tuple:
    return ("attack step", settings.smoothed) + sample_key(model, x, settings)


def _observe(key, a_units: float, b_units: float, seconds: float) -> None:
    if not seconds > 0:             # nothing measured (a job timed at 0 s): it would divide by zero
        return
    with _STEPS_LOCK:
        obs = _STEPS.setdefault(key, [])
        obs.append((float(a_units), float(b_units), float(seconds)))
        del obs[:-8]


def _fit(key, a0: float, b0: float, measured: bool = False) -> tuple[float, float]:
    """Seconds per ``a`` unit and per ``b`` unit of the jobs of ``key``: fitted (least squares
    on relative errors) to the last jobs of that kind when they differ in shape; otherwise
    the prior ``(a0, b0)`` scaled to them (the prior alone before any job). ``measured``: ``b0``
    was measured here (a map's noisy samples): a line only through jobs 4× apart in ``b``
    units; otherwise jobs whose ``b`` part is at least a second (and the fixed part) rescale
    ``b`` (a busier machine), and shorter ones correct the fixed part (a T = 8 map's first-run
    overhead, scaled over every sample, made a T = 256 map's prediction 1.3× too long)."""
    with _STEPS_LOCK:
        obs = list(_STEPS.get(key, ()))
    if not obs:
        return a0, b0
    rows = np.array([[s / t, e / t] for s, e, t in obs])
    # measured units must differ 4× for a line: one through two short maps (T = 16 and 64 on the
    # tiny model, 2.2× apart) extrapolated their timing noise to a long map, 0.5–2× off
    spread = not measured or max(e / s for s, e, _ in obs) >= 4 * min(e / s for s, e, _ in obs)
    if len(obs) >= 2 and spread and np.linalg.matrix_rank(rows, tol=1e-6 * np.abs(rows).max()) == 2:
        (a, b), *_ = np.linalg.lstsq(rows, np.ones(len(obs)), rcond=None)
        if a >= 0 and b > 0:
            return float(a), float(b)
    if measured:
        # a job whose measured part dominates measures its rate (a busier machine shows here);
        # a short one its fixed part (its first-run overhead is not charged to every sample)
        long = [(s, e, t) for s, e, t in obs if b0 * e >= max(a0 * s, 1.0)]
        b = float(np.median([max(t - a0 * s, 0.0) / e for s, e, t in long])) if long else b0
        short = [(s, e, t) for s, e, t in obs if b0 * e < max(a0 * s, 1.0)]
        a = a0 + float(np.median([(t - a0 * s - b * e) / s for s, e, t in short])) if short else a0
        if b > 0:
            return max(a, 0.0), b
    factor = float(np.median([t / (a0 * s + b0 * e) for s, e, t in obs]))
    return a0 * factor, b0 * factor


def predict_attack(model, x, settings, attack) -> float:
    """Seconds for one attacked method: its maps at the measured sample rate, its steps at the
    step costs fitted to the attacks finished on this device (a prior before any)."""
    return _attack_maps(model, x, _capped(model, x, settings)) + _attack_steps(model, x, settings, attack)


def _attack_steps(model, x, settings, attack) -> float:
    """Seconds of an attack's steps (its maps left out): the fitted step costs times
    :func:`attack_work`."""
    settings = _capped(model, x, settings)
    key = _attack_pilot(model, x, settings, attack)
    # the prior's split between a step's fixed part and its EOT samples (the pilot scales both)
    if settings.smoothed:
        per_pass, per_sample, full = _passes(model, x, settings)
        sample_seconds = per_pass / full + per_sample
    else:
        sample_seconds = _gradient_seconds(model, x, settings)
    a0, b0 = ATTACK_STEP_FIXED * sample_seconds, ATTACK_SECOND_ORDER * sample_seconds
    a, b = _fit(key, a0, b0) if settings.smoothed else _fit(key, a0, a0 + b0)
    units_a, units_b = attack_work(model, x, settings, attack)
    return units_a * a + units_b * b


#: The keys of the attack pilots that ran (:func:`_attack_pilot`).
_PILOTED: set = set()
#: EOT samples of a pilot's step at most (a step of 32 on Lite0 takes 4.5 s); a larger EOT is
#: predicted by the prior's split between a step's fixed part and its EOT samples (on Lite0 the
#: samples dominate; on the tiny CNN that split was 1.4× over at 8 from a pilot at 4).
PILOT_EOT = 8


def _attack_pilot(model, x, settings, attack) -> tuple:
    """The key of the step costs to predict from (:func:`_fit`): the attacks of this kind
    finished here (:func:`record_attack`), or before any, a pilot's. The pilot, once per kind:
    real attacks of one step (a smoothed map's at T = 2 and the attack's EOT), run until warm
    (:func:`_warm`), and one of two steps, at most :data:`PILOT_EOT` EOT samples (the prior's
    split scales to more). A raw method's two attacks are recorded as they ran (a part per
    attack, a part per step); a smoothed method's step as the difference of the two (its T = 2
    maps are too short to subtract reliably: a step left over after their predicted time was
    0.14 s, the real attack's steps took 0.31 s). The step costs' ratio to a noisy sample
    depends on the CPU (a vanilla step was 4.5 batched samples on one machine and 6.2 on
    another), so before this the first prediction of a fresh server was up to 2× off."""
    key = _attack_key(model, x, settings)
    pilot = ("pilot",) + key
    with _STEPS_LOCK:
        if _STEPS.get(key) or pilot in _PILOTED:
            return key if _STEPS.get(key) else pilot
        _PILOTED.add(pilot)
    from .compute import attack_method

    small = settings.replace(samples=2) if settings.smoothed else settings
    one = attack.replace(steps=1, restarts=1, eot=min(attack.eot, PILOT_EOT))
    two = one.replace(steps=2)
    t1 = _warm(lambda: attack_method(model, x, small, one), most=4)
    start = time.perf_counter()
    attack_method(model, x, small, two)
    t2 = time.perf_counter() - start
    if settings.smoothed and t2 - t1 > 0.05 * t1:
        _observe(pilot, *attack_work(model, x, small, one), t2 - t1)
    elif settings.smoothed:         # no step to see (the attack stopped early, or the model is tiny)
        _observe(pilot, *_attack_observation(model, x, small, one, t1))
    else:
        for a, t in ((one, t1), (two, t2)):
            _observe(pilot, *_attack_observation(model, x, small, a, t))
    return pilot


def _robustness_key(model, x, budgets: int) -> tuple:
    return ("robustness", getattr(model, "name", type(model).__name__), tuple(x.shape[-2:]), budgets > 1)


def record_robustness(model, x, budgets: int, predicted: float, seconds: float) -> None:
    """Record a finished contrast (``budgets = 1``) or profile: the ratio of its time to the
    prior of :func:`predict_robustness`, which scales the next predictions of its kind."""
    if predicted and predicted > 0:
        _observe(_robustness_key(model, x, budgets), 1.0, 0.0, float(seconds) / float(predicted))


def predict_robustness(model, x, methods, rs, budgets: int = 1, prior: bool = False,
                       references: tuple = ()) -> float:
    """Seconds for the raw-versus-certified contrast (``budgets = 1``: every method attacked
    once, :func:`rrs.workflows.robustness.contrast`) or for a robustness profile (``budgets``
    > 1: the sweep and bisection of ``rs``): the expected work of each method from the
    profile's control flow (:func:`rrs.workflows.robustness.cost.profile_work`: reference map
    and certificate, floor, attacks with their measured maps, confirmation maps), each at the
    rates measured here (:func:`predict_map`, the fitted attack steps, :func:`predict_certificate`);
    times the median ratio of actual to predicted time of the finished ones of its kind
    (:func:`record_robustness`; ``prior``: without that ratio). ``references``: methods whose
    reference map the contrast is given (the pages give the certified map)."""
    from rrs.workflows.robustness.cost import profile_work

    total = 0.0
    for m in methods:
        w = profile_work(m, rs, profile=budgets > 1, reference_given=m.method in references)
        measured = m.replace(samples=w.measured) if m.smoothed else m
        one, two = (_attack_steps(model, x, measured, rs.attack(0.1).replace(eot=w.eot, steps=n)) for n in (1, 2))
        per_step = two - one                 # the step costs are linear: a part per attack, a part per step
        total += w.attacks * (one - per_step + w.maps_per_attack * predict_map(model, x, measured)) + w.steps * per_step
        if w.reference:
            total += predict_map(model, x, m)
        if w.certified:
            total += predict_certificate(model, x, m)
        if w.floor:
            total += predict_map(model, x, measured)
        if w.confirmations:
            total += w.confirmations * predict_map(model, x, m.replace(samples=w.confirm_samples))
    if not prior:
        with _STEPS_LOCK:
            ratios = [t for _, _, t in _STEPS.get(_robustness_key(model, x, budgets), ())]
        if ratios:
            total *= float(np.median(ratios))
    return total


def _attack_observation(model, x, settings, attack, seconds: float) -> tuple[float, float, float]:
    """A finished attack's work units (:func:`attack_work`) and its steps' time: its time less
    its maps' at the measured sample rate, at least a fifth of it."""
    settings = _capped(model, x, settings)
    units_a, units_b = attack_work(model, x, settings, attack)
    return units_a, units_b, max(float(seconds) - _attack_maps(model, x, settings), 0.2 * float(seconds))


def record_attack(model, x, settings, attack, seconds: float) -> None:
    """Record a finished (not cached) attack for the next predictions of this kind (the pilot's
    measurements are no longer used, :func:`_attack_pilot`)."""
    _observe(_attack_key(model, x, _capped(model, x, settings)),
             *_attack_observation(model, x, settings, attack, seconds))


def _certificate_key(model, x, map_settings) -> tuple:
    return ("certificate", getattr(model, "name", type(model).__name__), tuple(x.shape[-2:]),
            map_settings.effective_cell, map_settings.k)


def predict_certificate(model, x, map_settings) -> float:
    """Seconds to certify a map of ``map_settings`` (the median of the last certificates of
    maps with these cells here; 0 before any: small next to the map on the default model)."""
    with _STEPS_LOCK:
        obs = [t for _, _, t in _STEPS.get(_certificate_key(model, x, map_settings), ())]
    return float(np.median(obs)) if obs else 0.0


def record_certificate(model, x, map_settings, seconds: float) -> None:
    """Record a finished certificate's time (:attr:`ui.compute.CertifyResult.elapsed`)."""
    _observe(_certificate_key(model, x, map_settings), 1, 1, seconds)


def _cells(x, settings) -> int:
    rows, cols = cell_grid(int(x.shape[-2]), int(x.shape[-1]), max(1, int(settings.effective_cell)))
    return rows * cols


def _anytime_key(scheme: str) -> tuple:
    return ("anytime certificates", scheme)


def predict_anytime_certificates(x, settings, scheme: str, checkpoints: int) -> float:
    """Seconds the Certify page spends certifying a run of ``checkpoints`` checkpoints (besides
    drawing its samples): checkpoint ``j``'s view re-certifies the ``j`` checkpoints reached
    (its best-so-far replays them), each in time proportional to the map's cells; fitted to
    the views certified here (:func:`record_anytime_certificates`), or
    :data:`CERTIFY_CELL_SECONDS` before any. NumPy work on the CPU, the same with any model."""
    _, per = _fit(_anytime_key(scheme), 0.0, CERTIFY_CELL_SECONDS)
    n = int(checkpoints)
    return per * _cells(x, settings) * n * (n + 1) / 2


def record_anytime_certificates(x, settings, scheme: str, checkpoint: int, seconds: float) -> None:
    """Record the certificate view of checkpoint ``checkpoint`` (1-based;
    :attr:`rrs.workflows.certify.AnytimeView.elapsed`)."""
    _observe(_anytime_key(scheme), 0, _cells(x, settings) * int(checkpoint), seconds)


def clear_measured() -> None:
    """Forget the measured maps and attack steps (tests; a new device)."""
    with _STEPS_LOCK:
        _STEPS.clear()
        _PASSES.clear()
        _PILOTED.clear()


def remaining_text(elapsed: float, fraction: float) -> str:
    """While a job runs: ``"about 20 s left"`` from the time so far and the share done."""
    if fraction <= 0 or elapsed < 1.0:
        return ""
    return f"{format_seconds(elapsed * (1 - fraction) / fraction)} left"


def predicted_text(seconds: float | None) -> str:
    """``"predicted about 12 s on this device"``."""
    return f"predicted {format_seconds(seconds)} on this device"
