"""Predicted times hold (issue 19): every long action of the pages, predicted from the work
measured in this process right before (maps and attacks of other shapes, recorded as the pages
record them), takes within ±30% of its prediction (medians over five seeds of the quicker of two runs). On the tiny CNN with
one torch thread, timed in process CPU seconds: the machine running the tests is shared by
several jobs, and its wall-clock speed swings 5× within seconds, which would test the load,
not the cost model (the pages record and predict wall-clock seconds with the same functions)."""
from __future__ import annotations

import statistics
import time

import pytest

from rrs.images import load_sample, to_tensor
from rrs.settings import L2, AttackSettings, CertifySettings, MapSettings
from rrs.smoothing import interpretation_map
from rrs.timing import RATES
from rrs.workflows import advice as WA
from rrs.workflows import certify as WC
from rrs.workflows.robustness import (ATTACK_STEP_GRADIENTS, RobustnessSettings, contrast, method_settings,
                                      predicted_gradients, robustness_profile)
from ui import compute as C
from ui import certify as CU
from ui import predict
from ui.attack import SWEEP_HIGH

from test_app import tiny_model

ATTACK = AttackSettings(objective="topk", norm="linf", epsilon=4 / 255, steps=10, eot=4)


@pytest.fixture()
def fresh_rates(one_thread):
    """One torch thread (conftest), and no rate or job measured before the test."""
    RATES.clear()
    predict.clear_measured()


def _attack(model, x, settings, attack):
    start = time.process_time()
    out = C.attack_method(model, x, settings, attack)
    predict.record_attack(model, x, settings, attack, time.process_time() - start)     # as the pages do
    return out


def _map(model, x, settings):
    start = time.process_time()
    out = C.compute_map(model, x, settings)
    predict.record_map(model, x, settings, time.process_time() - start)                 # as the pages do
    return out


def _certificate(model, x, settings):
    mr = C.compute_map(model, x, settings)
    start = time.process_time()
    C.map_certificates(mr, CertifySettings(betas=(1.0,)))
    predict.record_certificate(model, x, settings, time.process_time() - start)     # as the pages do


def _certify_run(model, x, settings, scheme="selection"):
    """The Certify page's run: every checkpoint sampled, certified and recorded as the page
    records it (ui.certify_view.run_live)."""
    cert = CU.certify_settings(L2, 0.05, scheme)
    for sampled in WC.sample_run(model, x, settings, cert, plan=WC.plan_run(settings.samples, scheme)):
        view = WC.certify_sampled(sampled, cert)
        predict.record_anytime_certificates(x, settings, scheme, len(sampled.checkpoints), view.elapsed)


def _compare(model, x, methods, ts, settings, attack):
    return C.compare_vs_t(model, x, methods, ts, settings, attack, CertifySettings(betas=(1.0,)))


def _time_ratios(actions: dict, seeds, each=None) -> dict:
    """Per action (``name: (predict_seconds(seed), run(seed))``), predicted ÷ taken CPU seconds
    for each seed, taken as the quicker of two runs (a hiccup of the machine is not the work);
    ``each(name, result)`` sees the last run's result of each seed."""
    ratios = {name: [] for name in actions}
    for seed in seeds:
        for name, (predict_seconds, run) in actions.items():
            predicted = predict_seconds(seed)
            took = []
            for _ in range(2):
                start = time.process_time()
                out = run(seed)
                took.append(time.process_time() - start)
            ratios[name].append(predicted / min(took))
            if each is not None:
                each(name, out)
    return ratios


def _outside(ratios: dict, low: float = 0.7, high: float = 1.3) -> dict:
    """The actions whose median ratio is outside ``[low, high]``, with their ratios."""
    return {n: [round(v, 2) for v in r] for n, r in ratios.items() if not low <= statistics.median(r) <= high}


def _on_one_of_two_tries(attempt) -> None:
    """``attempt()`` measures the rates afresh, predicts, runs and returns the actions outside
    ±30% (:func:`_outside`). A second try, from new measurements, when the first has any: CI
    runs on a machine shared with other jobs, whose speed drifted by up to 2× between the
    measurements and the runs of one try (ratios 0.5–0.7 there, 0.9–1.2 on a quiet machine).
    A cost model that is wrong fails both tries."""
    bad = attempt()
    if bad:
        print(f"outside ±30% on the first try, measuring again: {bad}")
        RATES.clear()
        predict.clear_measured()
        bad = attempt()
    assert not bad, bad


def test_every_long_action_takes_its_predicted_time_within_30_percent(fresh_rates):
    _on_one_of_two_tries(_long_actions)


def _long_actions() -> dict:
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    m = MapSettings(sigma=0.15, cell=16, k=0.05)
    # the rates, measured here right before: a map, and attacks of other shapes than predicted
    for t in (16, 64):
        _map(model, x, m.replace(method="rrs", samples=t, seed=9))
    for method, t, eot, steps in (("vanilla", 1, 1, 10), ("vanilla", 1, 1, 25), ("rrs", 8, 2, 3), ("rrs", 8, 6, 2)):
        _attack(model, x, m.replace(method=method, samples=t, seed=9), ATTACK.replace(eot=eot, steps=steps))
    _certificate(model, x, m.replace(method="rrs", samples=8, seed=9))
    m8 = m.replace(method="rrs", cell=8)                      # the Certify page's cells
    _certify_run(model, x, m8.replace(samples=128, seed=9))    # a shorter run before (2 checkpoints)
    attack_page = [("vanilla", 32), ("smoothgrad", 32), ("rrs", 32)]
    actions = {
        "Explain map (RRS, T = 1024)": (
            lambda s: predict.predict_map(model, x, m.replace(method="rrs", samples=1024, seed=s)),
            lambda s: _map(model, x, m.replace(method="rrs", samples=1024, seed=s))),
        "Certify run (RRS, T = 1024: 5 checkpoints, each certified)": (
            lambda s: CU.predicted_time(model, x, m8.replace(samples=1024, seed=s), WC.plan_run(1024, "selection"),
                                        "cpu")[0],
            lambda s: _certify_run(model, x, m8.replace(samples=1024, seed=s))),
        "Learn step 3 (vanilla attack, 40 steps)": (
            lambda s: predict.predict_attack(model, x, m.replace(method="vanilla", seed=s), ATTACK.replace(steps=40, eot=2)),
            lambda s: _attack(model, x, m.replace(method="vanilla", seed=s), ATTACK.replace(steps=40, eot=2))),
        "Learn step 6 (RRS map, T = 2048)": (
            lambda s: predict.predict_map(model, x, m.replace(method="rrs", samples=2048, sigma=0.25, cell=8, seed=s)),
            lambda s: _map(model, x, m.replace(method="rrs", samples=2048, sigma=0.25, cell=8, seed=s))),
        "Attack page (three methods, T = 32, EOT 4, 10 steps)": (
            lambda s: sum(predict.predict_attack(model, x, m.replace(method=k, samples=t, seed=s), ATTACK)
                          for k, t in attack_page),
            lambda s: [_attack(model, x, m.replace(method=k, samples=t, seed=s), ATTACK) for k, t in attack_page]),
        "Compare (vanilla and RRS, T = 2, 8, 32; EOT 2, 10 steps)": (
            lambda s: sum(predict.predict_attack(model, x, m.replace(method=k, samples=t, seed=s),
                                               ATTACK.replace(eot=2, steps=10))
                          for k, t in (("vanilla", 2), ("rrs", 2), ("rrs", 8), ("rrs", 32)))
            + sum(predict.predict_map(model, x, m.replace(method="rrs", samples=t, seed=s))
                  + predict.predict_certificate(model, x, m) for t in (2, 8, 32)),
            lambda s: _compare(model, x, ["vanilla", "rrs"], [2, 8, 32], m.replace(method="rrs", samples=1, seed=s),
                               ATTACK.replace(eot=2, steps=10))),
    }
    return _outside(_time_ratios(actions, range(5)))


def _warm_up(model, x, m):
    """What the pages did and recorded right before: maps of three sizes (the Certify page's map
    at T = 256 among them) and its certificate, attacks of other shapes than the profiles', and
    the Attack page's own attacks (the break radii are offered under its results)."""
    for t in (16, 64, 256):
        _map(model, x, m.replace(method="rrs", samples=t, seed=9))
    for method, t, eot, steps in (("vanilla", 1, 1, 10), ("vanilla", 1, 1, 25), ("rrs", 8, 2, 3), ("rrs", 8, 6, 2)):
        _attack(model, x, m.replace(method=method, samples=t, seed=9), ATTACK.replace(eot=eot, steps=steps))
    for method in ("vanilla", "smoothgrad", "rrs"):
        _attack(model, x, m.replace(method=method, samples=32, seed=9), ATTACK)
    _certificate(model, x, m.replace(method="rrs", samples=32, seed=9))


def _counted(profile) -> float:
    """A finished profile's work in plain gradients, as it counted it: real-model maps and label
    checks, surrogate samples at ATTACK_STEP_GRADIENTS each, and a smoothed attack's label
    check per step (a raw attack's checks are its maps)."""
    total = 0.0
    for p in profile.methods:
        total += p.cost["map"] + ATTACK_STEP_GRADIENTS * p.cost["attack"]
        if p.settings.smoothed:
            total += p.cost["attack"] / profile.settings.eot
    return total


def test_robustness_profiles_and_the_contrast_take_their_predicted_time_within_30_percent(fresh_rates):
    """The Attack page's and the Certify page's break radii (robustness profiles, as the pages
    set them up) and the Certify page's "Try to break it" contrast: the app's predicted
    seconds (:func:`ui.predict.predict_robustness`, before any profile ran here) within ±30% of
    the CPU time taken, and the command line's predicted gradients
    (:func:`rrs.workflows.robustness.predicted_gradients`) within ±30% of the work each profile
    counted (medians over three seeds)."""
    gradients = {}
    _on_one_of_two_tries(lambda: _profiles_and_contrast(gradients))
    bad = _outside(gradients)
    assert not bad, bad


def _profiles_and_contrast(gradients: dict) -> dict:
    """The three actions' time ratios outside ±30%; ``gradients`` gets each profile's ratios of
    predicted to counted gradients."""
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    m = MapSettings(sigma=0.15, cell=8, k=0.05)
    _warm_up(model, x, m)
    page = method_settings(m.replace(samples=32), ["vanilla", "smoothgrad", "rrs"])
    rs_attack = RobustnessSettings(norm="linf", high=SWEEP_HIGH["linf"], budgets=9, steps=10, eot=4,
                                   sweep_samples=32, confirm_samples=128)     # as ui.attack.break_scale sets it
    raw, smoothed, rs_certify = WA.attack_settings(m.replace(method="rrs", samples=256), L2, "vanilla")
    reference = interpretation_map(model, x, smoothed)

    def seeded(methods, rs, s):
        return tuple(ms.replace(seed=s) for ms in methods), rs.replace(seed=s)

    n_a, n_c = len(rs_attack.grid) + rs_attack.bisection, len(rs_certify.grid) + rs_certify.bisection
    actions = {
        "Attack page break radii (vanilla, SmoothGrad, RRS at T = 32; ℓ∞, 9 budgets, EOT 4)": (
            lambda s: predict.predict_robustness(model, x, *seeded(page, rs_attack, s), budgets=n_a),
            lambda s: robustness_profile(model, x, *seeded(page, rs_attack, s))),
        "Certify page break radii (vanilla, RRS at T = 256; ℓ2)": (
            lambda s: predict.predict_robustness(model, x, *seeded((raw, smoothed), rs_certify, s), budgets=n_c),
            lambda s: robustness_profile(model, x, *seeded((raw, smoothed), rs_certify, s), CertifySettings(norm=L2))),
        "Certify page contrast (vanilla, RRS at T = 256, at ℓ2 radius 0.3)": (
            lambda s: predict.predict_robustness(model, x, *seeded((raw, smoothed), rs_certify, s),
                                                 references=(smoothed.method,)),
            lambda s: contrast(model, x, *seeded((raw, smoothed), rs_certify, s)[:1], 0.3, rs_certify.replace(seed=s),
                               references={smoothed.method: reference})),
    }
    gradients.clear()
    gradients.update({name: [] for name in list(actions)[:2]})

    def count(name, profile):
        if name in gradients:
            methods = tuple(p.settings for p in profile.methods)
            gradients[name].append(predicted_gradients(methods, profile.settings) / _counted(profile))

    return _outside(_time_ratios(actions, range(3), count))


def test_a_finished_job_informs_the_next_prediction_at_the_precision_it_ran_in(fresh_rates, monkeypatch):
    """A page predicts from the settings it shows (precision "fp32", the default) and records a
    finished job under the settings it ran in (bf16 where this device uses it,
    :func:`rrs.compute.device.resolve`). Both resolve first, so the record is read: before, a
    CPU with bf16 predicted every map from the fp32 pilot and never from a finished map."""
    from rrs.compute import device as D

    monkeypatch.setenv("RRS_PRECISION", "bf16")            # what resolve picks on a CPU with bf16
    model = tiny_model()
    x = to_tensor(load_sample("coffee"), 32)
    shown = MapSettings(method="rrs", samples=64, cell=8)
    ran = D.resolve(model, x, shown)
    assert (shown.precision, ran.precision) == ("fp32", "bf16")

    before = predict.predict_map(model, x, shown)
    predict.record_map(model, x, ran, 10 * before)          # a map that took 10× its prediction
    assert predict.predict_map(model, x, shown) == pytest.approx(10 * before, rel=0.01)

    before = predict.predict_attack(model, x, shown, ATTACK)
    one, two = (predict.predict_attack(model, x, shown, ATTACK.replace(steps=n)) for n in (1, 2))
    maps = 2 * one - two                                    # a smoothed attack's steps: a cost per step
    predict.record_attack(model, x, ran, ATTACK, maps + 20 * (before - maps))   # steps 20× slower
    assert predict.predict_attack(model, x, shown, ATTACK) == pytest.approx(maps + 20 * (before - maps), rel=0.01)


def _long_after_short() -> dict:
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    short = MapSettings(method="rrs", samples=8, sigma=0.15, cell=8, k=0.1)
    ratios = {"T = 2048 after T = 8": [], "T = 300 after both": []}
    for seed in range(3):
        RATES.clear()
        predict.clear_measured()
        _map(model, x, short.replace(seed=seed))                 # one partial pass: the rate the page last saw
        for name, t in (("T = 2048 after T = 8", 2048), ("T = 300 after both", 300)):
            settings = short.replace(samples=t, seed=seed)
            predicted = predict.predict_map(model, x, settings)
            start = time.process_time()
            _map(model, x, settings)
            ratios[name].append(predicted / (time.process_time() - start))
    return _outside(ratios)


def test_a_long_map_is_predicted_from_full_passes_not_from_a_short_maps_rate(fresh_rates):
    """A pass of the model costs a part per pass and a part per sample: the rate of a short map
    (one pass of 8 samples) predicted a long one (full passes) at 1.5× its time on Lite0
    (Learn step 6: 28 s predicted, 19 s taken), and a short map's first-run overhead was
    charged to every sample of the next. Here (the tiny model, 256 samples a pass) a T = 8 map
    is run first, then T = 2048 and T = 300 are predicted, run and compared, within ±30%."""
    _on_one_of_two_tries(_long_after_short)


def test_a_long_map_that_ran_slower_rescales_every_map_a_short_one_only_its_fixed_part(fresh_rates):
    """A map whose noisy samples take most of its time measures the rate (a machine twice as
    busy makes the next maps twice as long, short ones too); a short map that took a second
    longer adds that second to the next maps, long ones included, not a second per pass."""
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    short, long = (MapSettings(method="rrs", samples=t, sigma=0.15, cell=8, k=0.1) for t in (8, 1 << 15))
    p_short, p_long = predict.predict_map(model, x, short), predict.predict_map(model, x, long)
    fixed = predict.predict_map(model, x, short.replace(method="vanilla"))      # its raw map, one gradient
    assert p_long > 1.0 > p_short > fixed                 # one is mostly samples, the other is not
    predict.record_map(model, x, long, 2 * p_long)
    # the short map's samples take twice as long; its fixed part (the raw map) is not scaled
    assert predict.predict_map(model, x, short) == pytest.approx(fixed + 2 * (p_short - fixed), rel=0.02)
    assert predict.predict_map(model, x, long) == pytest.approx(2 * p_long, rel=0.01)
    predict.clear_measured()
    p_short, p_long = predict.predict_map(model, x, short), predict.predict_map(model, x, long)
    predict.record_map(model, x, short, p_short + 1.0)
    assert predict.predict_map(model, x, long) == pytest.approx(p_long + 1.0, rel=0.05)


def test_two_short_maps_do_not_make_a_rate_for_a_long_one():
    """Two short maps close in size (T = 16 and 24 on the tiny model, one pass each: their
    measured units less than 4× apart) make no line: one through T = 16 and 64 extrapolated
    their timing noise to a long map (the Attack page and Compare predicted at 0.5–2.3× their
    time in the suite). Their times correct the fixed part; a T = 1024 map stays near its
    prediction from the passes."""
    predict.clear_measured()
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    m = MapSettings(method="rrs", sigma=0.15, cell=16, k=0.05)
    p16, p24, p1024 = (predict.predict_map(model, x, m.replace(samples=t)) for t in (16, 24, 1024))
    # timing noise: the two took about the same time (a line through them is nearly flat, and
    # would predict T = 1024 at a fraction of its time)
    predict.record_map(model, x, m.replace(samples=16), 1.2 * p16)
    predict.record_map(model, x, m.replace(samples=24), 1.2 * 1.02 * p16)
    after = predict.predict_map(model, x, m.replace(samples=1024))
    assert 0.85 * p1024 < after < 1.2 * p1024, (p1024, after)


def test_a_pilot_is_timed_once_warm():
    """A new shape's first runs are slow (Lite0: passes of 16 samples took 2.49, 0.83, 0.59,
    0.59 s): a pilot's time is taken once two runs in a row agree, and the cold runs are not in
    it; runs that never agree stop at ``most``, with the last one's time."""
    cold_then_warm = iter([0.8, 0.4, 0.2, 0.2, 0.2, 0.2])
    calls = []

    def run(durations):
        calls.append(1)
        time.sleep(next(durations))

    assert predict._warm(lambda: run(cold_then_warm)) == pytest.approx(0.2, abs=0.05)
    assert len(calls) >= 4
    calls.clear()
    slower = iter([0.1, 0.2, 0.4, 0.8, 1.6])
    assert predict._warm(lambda: run(slower), most=4) == pytest.approx(0.8, abs=0.1)
    assert len(calls) == 4


def _first_attacks() -> dict:
    """Each attack predicted on a fresh process (no attack finished here: the pilot measures),
    then run twice (the quicker counts), for three seeds."""
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    m = MapSettings(sigma=0.15, cell=16, k=0.05)
    attacks = {"vanilla, 40 steps": (m.replace(method="vanilla"), ATTACK.replace(steps=40, eot=2)),
               "RRS, T = 32, EOT 4, 10 steps": (m.replace(method="rrs", samples=32), ATTACK),
               "SmoothGrad, T = 16, EOT 8, 5 steps": (m.replace(method="smoothgrad", samples=16),
                                                     ATTACK.replace(eot=8, steps=5))}
    ratios = {name: [] for name in attacks}
    for seed in range(3):
        for name, (settings, attack) in attacks.items():
            RATES.clear()
            predict.clear_measured()
            settings = settings.replace(seed=seed)
            predicted = predict.predict_attack(model, x, settings, attack)
            took = []
            for _ in range(2):
                start = time.process_time()
                C.attack_method(model, x, settings, attack)
                took.append(time.process_time() - start)
            ratios[name].append(predicted / min(took))
    return _outside(ratios)


def test_the_first_attack_on_a_fresh_server_is_predicted_from_a_pilot_within_30_percent(fresh_rates):
    """Before any attack finished here, a step's cost came from constants in batched noisy
    samples; their ratio depends on the machine and the model (a vanilla step: 4.5 samples on
    one CPU, 6.2 on another, 21 on the tiny CNN), and Learn step 3 on a fresh server said 6 s for
    3.2 s. A pilot (one-step and two-step attacks, warm) measures it: the first prediction of a
    raw and of two smoothed attacks (EOT above the pilot's too) is within ±30%."""
    _on_one_of_two_tries(_first_attacks)


def test_a_job_timed_at_no_time_is_not_recorded(fresh_rates):
    """A pilot's second step that took no longer than its first (an attack that stopped early)
    was recorded as a step of 0 s, and the Attack page's break-radius prediction divided by it
    (ZeroDivisionError in the browser test); a job of 0 s teaches nothing and is left out."""
    model, x = tiny_model(), to_tensor(load_sample("coffee"), 32)
    settings = MapSettings(method="rrs", samples=16, sigma=0.15, cell=8, k=0.1)
    before = predict.predict_attack(model, x, settings, ATTACK)
    predict.record_attack(model, x, settings, ATTACK, 0.0)
    predict.record_map(model, x, settings, 0.0)
    assert predict.predict_attack(model, x, settings, ATTACK) == pytest.approx(before, rel=1e-9)
