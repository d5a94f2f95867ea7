"""The whole story, timed: certificate, raw-vs-certified contrast and the Attack page's default.

One run, one image (coffee), the default model, on whatever device is here. Each path is
timed the way the app runs it:

1. **Certify** — the anytime run of the Certify page (:func:`rrs.workflows.certify.sample_run`,
   separate selection batch) certified after every checkpoint (:func:`rrs.workflows.certify.certify_sampled`,
   ℓ2, the page's β list): the time to the *first certified cells* (the first checkpoint with a
   finite-sample per-cell radius > 0) and to the *complete certificate*.
2. **Contrast** — the raw-vs-certified contrast of the "what the guarantee is worth" issue: the
   top-k attack (ℓ2, label kept) at the certified radius (:func:`rrs.workflows.advice.break_plan`) on the
   raw vanilla-gradient map and on the certified RRS map (``contrast`` below: today's path is
   the old "Try to break it" attack, the new paths the Certify page's contrast button,
   :func:`rrs.workflows.advice.contrast_at_radius`).
3. **Attack page** — its default: vanilla, SmoothGrad and RRS attacked at ℓ∞ 4/255
   (:func:`ui.compute.attack_method`).

Paths, side by side: ``today`` (fp32, the page defaults — the baseline), ``new`` (the device's
precision, :func:`rrs.compute.device.precision`, at the same defaults) and ``new, class preset``
(the device's precision at the sidebar's fast preset, :data:`ui.state.PRESET`). Every time is
also given in *gradient units*: the seconds of one fp32 vanilla-gradient noise sample of the same
model measured in the same run (before and after; their mean) — the machine-independent figure.
The last line is ``story: first cells A s, whole story B s, attack C s, speed-up vs baseline D×``
(A–C: the class preset; D: today's whole story ÷ the new one at the Certify defaults).

    python bench/story.py [--quick] [--device cpu|cuda] [--paths today,new,preset]

``--quick`` uses the tiny model (a dry run of the code in seconds).

Next to each actual time, the app's *predicted* time for that action, from the same functions
the pages call before the click (:mod:`ui.predict`, :func:`rrs.compute.policy.predict_seconds`),
fed as the pages feed them (each finished attack and contrast recorded), and their ratio
(issue 19's goal: within ±30%).
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field

import torch

from rrs.attacks import attack
from rrs.compute import device as D
from rrs.compute.policy import predict_seconds, sample_rate
from rrs.images import load_sample
from rrs.models import load_model
from rrs.settings import L2, LINF, AttackSettings, CertifySettings, MapSettings
from rrs.smoothing import smooth
from rrs.workflows import advice as WA
from rrs.workflows import certify as WC
from ui import predict as P
from ui.compute import CERTIFY_BETAS, attack_method
from ui.state import PRESET

ATTACK_METHODS = ("vanilla", "smoothgrad", "rrs")
RAW_STEPS = 20          # the raw map's attack in the contrast (issue 15's command line)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gradient_unit(model, x, repeats: int = 2) -> float:
    """Seconds of one fp32 vanilla-gradient noise sample (the fastest of ``repeats`` maps of 16)."""
    s = MapSettings(method="smoothgrad", samples=16, cell=max(1, int(x.shape[-1]) // 14), precision="fp32")
    dev = D.device_of(model)
    best = math.inf
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        smooth(model, x, s, batch_size=16)
        _sync(dev)
        best = min(best, (time.perf_counter() - t0) / 16)
    return best


@dataclass(frozen=True)
class Path:
    """One way to tell the story: the Certify map, its certificate, and the Attack page's map
    and attack (``precision`` applied to every smoothed map)."""

    name: str
    certify: MapSettings
    certify_settings: CertifySettings
    attack_map: MapSettings
    attack: AttackSettings
    scheme: str = "selection"


def paths(precision: str, fast: dict, size: int = 224) -> dict:
    """``today`` (fp32, page defaults), ``new`` (``precision``, page defaults) and ``preset``
    (``precision``, the fast preset's values ``fast``: key → value of :data:`ui.state.PRESET`).
    Cell sizes are the pages' at 224 px, scaled to an input of ``size`` px."""
    def cell(c):
        return max(1, round(int(c) * size / 224))

    def build(name, prec, v):
        cert = MapSettings(method="rrs", sigma=0.25, samples=int(v["certify_samples"]), cell=cell(v["certify_cell"]),
                           k=0.1, seed=0, precision=prec)
        amap = MapSettings(method="rrs", sigma=0.15, samples=int(v["attack_samples"]), cell=cell(v["attack_cell"]),
                           k=0.05, seed=0, precision=prec)
        att = AttackSettings(objective="topk", norm=LINF, epsilon=4 / 255, steps=int(v["attack_steps"]),
                             eot=int(v["attack_eot"]), seed=0)
        return Path(name, cert, CertifySettings(norm=L2, eta=0.05, betas=CERTIFY_BETAS), amap, att)

    normal = {key: pair[0] for key, pair in PRESET.items()}
    return {"today": build("today (fp32, Certify defaults)", "fp32", normal),
            "new": build(f"new ({precision}, Certify defaults)", precision, normal),
            "preset": build(f"new ({precision}, class preset)", precision, fast)}


@dataclass
class Timing:
    first_cells: float = math.nan
    first_cells_samples: int = 0
    certificate: float = math.nan
    contrast: float = math.nan
    attack_page: float = math.nan
    radius: float = 0.0
    cells: int = 0
    contrast_text: str = ""
    notes: list = field(default_factory=list)
    predicted: dict = field(default_factory=dict)   # action → the app's predicted seconds


    @property
    def whole(self) -> float:
        return self.certificate + self.contrast


def run_certify(model, x, path: Path, t: Timing):
    """The Certify page's anytime run, certified at every checkpoint; the last view. The
    app's prediction (:func:`ui.certify.predicted_time`: the measured sample rate, after a
    pilot when there is none, times the samples) for the whole run and for the samples at which
    the first cells came."""
    if sample_rate(model, x, path.certify) <= 0:        # the page's pilot when no rate is known
        raise RuntimeError("no sample rate")
    total = predict_seconds(model, x, path.certify, path.certify.samples)
    per_sample = total / path.certify.samples
    start = time.perf_counter()
    view = None
    cs = path.certify_settings.replace(scheme=path.scheme)
    for sampled in WC.sample_run(model, x, path.certify, cs):
        view = WC.certify_sampled(sampled, cs)
        cells = int((view.cell_radii("best", True) > 0).sum())
        if cells and math.isnan(t.first_cells):
            t.first_cells, t.first_cells_samples = time.perf_counter() - start, sampled.samples_done
    t.certificate = time.perf_counter() - start
    t.cells = int((view.cell_radii("best", True) > 0).sum())
    t.predicted["certificate"] = total
    if t.first_cells_samples:
        t.predicted["first cells"] = per_sample * t.first_cells_samples
    return view


def contrast(model, x, view, today: bool, eval_samples: int = 64) -> tuple[float, str]:
    """The raw vanilla-gradient map and the certified RRS map attacked at the certified radius
    (top-k objective, ℓ2, label kept); ``(radius, one line)``. ``today``: the RRS side is the
    old "Try to break it" attack (5 steps, EOT 2, ``eval_samples`` measured samples, clean map
    and floor recomputed) and the raw side runs all its steps; otherwise the Certify page's
    contrast button, :func:`rrs.workflows.advice.contrast_at_radius` (the certified map as the
    reference, the raw attack stopping once every top cell is out)."""
    source, radius, claimed = WA.break_plan(view, 1.0)
    if radius <= 0:
        return 0.0, "nothing certified: no contrast"
    s = view.sampled.settings
    raw = s.replace(method="vanilla")
    eps = radius * (1 - 1e-6)
    out = []
    if today:
        rrs = s.replace(samples=int(min(eval_samples, s.samples)))
        for label, settings, opts in (
                ("raw", raw, AttackSettings(objective="topk", norm=L2, epsilon=eps, steps=RAW_STEPS, seed=0)),
                ("rrs", rrs, AttackSettings(objective="topk", norm=L2, epsilon=eps, steps=5, eot=WA.BREAK_EOT,
                                            seed=0))):
            res = attack(model, x, settings, opts, target=view.sampled.target)
            out.append(f"{label} overlap {res.topk_intersection:.2f} (floor {res.floor.topk_intersection:.2f})")
    else:
        res = WA.contrast_at_radius(model, x, view, "vanilla", 1.0)
        for p in (res.raw, res.smoothed):
            out.append(f"{p.settings.method} lost {p.lost} of {p.k} (overlap {p.overlap:.2f}, floor {p.floor:.2f})")
    return radius, f"at the certified ℓ2 radius {radius:.3g} ({source}): " + ", ".join(out)


def predict_contrast(model, x, view) -> float:
    """The Certify page's predicted seconds of its contrast button (:func:`ui.predict.predict_robustness`
    on :func:`rrs.workflows.advice.contrast_settings`, given the certified map as the page
    gives it: the certified map is not charged again)."""
    raw_s, smooth_s, rs = WA.contrast_settings(view, "vanilla")
    return P.predict_robustness(model, x, (raw_s, smooth_s), rs, references=(smooth_s.method,))


def record_contrast(model, x, view, seconds: float) -> None:
    """What the page records after a contrast (the next prediction's scale)."""
    raw_s, smooth_s, rs = WA.contrast_settings(view, "vanilla")
    P.record_robustness(model, x, 1, P.predict_robustness(model, x, (raw_s, smooth_s), rs, prior=True,
                                                                references=(smooth_s.method,)), seconds)


def run_attack_page(model, x, path: Path, t: Timing) -> float:
    """The Attack page's three methods in turn; its prediction (:func:`ui.attack.predict`: the
    sum of :func:`ui.predict.predict_attack`) before, each finished attack recorded after (as the
    page does, so a later path's prediction uses this one's steps)."""
    settings = {m: path.attack_map.replace(method=m) for m in ATTACK_METHODS}
    t.predicted["attack page"] = sum(P.predict_attack(model, x, s, path.attack) for s in settings.values())
    start = time.perf_counter()
    for m, s in settings.items():
        out = attack_method(model, x, s, path.attack)
        P.record_attack(model, x, s, path.attack, out.elapsed)
    return time.perf_counter() - start


def story(model, x, path: Path) -> Timing:
    t = Timing()
    view = run_certify(model, x, path, t)
    today = path.name.startswith("today")
    if not today and WA.break_plan(view, 1.0)[1] > 0:
        t.predicted["contrast"] = predict_contrast(model, x, view)
    t0 = time.perf_counter()
    t.radius, t.contrast_text = contrast(model, x, view, today=today)
    t.contrast = time.perf_counter() - t0
    if "contrast" in t.predicted:
        record_contrast(model, x, view, t.contrast)
        t.predicted["whole story"] = t.predicted["certificate"] + t.predicted["contrast"]
    t.attack_page = run_attack_page(model, x, path, t)
    return t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the tiny model: a dry run of the code")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--paths", default="today,new,preset", help="which paths to run (today,new,preset)")
    ap.add_argument("--image", default="coffee")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    model = load_model("tiny" if args.quick else "efficientnet-lite0", device)
    x = model.prepare(load_sample(args.image)).to(device)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    t0 = time.perf_counter()
    precision = D.precision(model, x)
    check = D.last_check(model)
    check_s = time.perf_counter() - t0
    fast = {key: pair[1] for key, pair in PRESET.items()}
    chosen = [p.strip() for p in args.paths.split(",") if p.strip()]
    table = paths(precision, fast, int(x.shape[-1]))
    smooth(model, x, MapSettings(method="rrs", samples=4, cell=16), batch_size=4)        # warm-up
    unit_before = gradient_unit(model, x)
    results = {}
    for key in chosen:
        results[key] = story(model, x, table[key])
        print(f"  … {table[key].name} done", flush=True)
    unit_after = gradient_unit(model, x)
    unit = (unit_before + unit_after) / 2
    print(f"device: {label}; model {model.name}; image {args.image}; device precision: {precision}"
          + (f" (check {check_s:.1f} s: bf16 vs fp32 top-k {check.topk:.2f} / Spearman {check.spearman:.3f}; "
             f"floor {check.floor_topk:.2f} / {check.floor_spearman:.3f}; bf16 {check.speedup:.2f}× per sample)"
             if check is not None else ""))
    print(f"gradient unit (one fp32 vanilla-gradient sample): {unit * 1000:.1f} ms "
          f"(before {unit_before * 1000:.1f}, after {unit_after * 1000:.1f})")
    for key in chosen:
        p = table[key]
        print(f"{p.name}: Certify T = {p.certify.samples}, {p.certify.cell}-px cells; Attack page T = "
              f"{p.attack_map.samples}, {p.attack.steps} steps × EOT {p.attack.eot}")
    cols = ("first cells", "certificate", "contrast", "whole story", "attack page")
    print(f"{'path':<36}" + "".join(f"{c:>22}" for c in cols))
    for key in chosen:
        r = results[key]
        vals = (r.first_cells, r.certificate, r.contrast, r.whole, r.attack_page)
        print(f"{table[key].name:<36}" + "".join(f"{v:>9.1f} s {v / unit:>8.0f} u" for v in vals))
    print("the app's predicted time (what the page shows before the click) ÷ actual:")
    print(f"{'path':<36}" + "".join(f"{c:>22}" for c in cols))
    for key in chosen:
        r = results[key]
        actual = dict(zip(cols, (r.first_cells, r.certificate, r.contrast, r.whole, r.attack_page)))
        cells = []
        for c in cols:
            pred = r.predicted.get(c)
            cells.append(f"{'—':>22}" if pred is None or not actual[c] > 0 else
                         f"{pred:>7.1f}/{actual[c]:<6.1f}{pred / actual[c]:>7.2f}×")
        print(f"{table[key].name:<36}" + "".join(cells))
    for key in chosen:
        r = results[key]
        print(f"{table[key].name}: first cells at T = {r.first_cells_samples}, {r.cells} cells certified at the "
              f"end; {r.contrast_text}")
    if "today" in results and "new" in results:
        speedup = results["today"].whole / results["new"].whole
    else:
        speedup = math.nan
    p = results.get("preset") or results[chosen[-1]]
    print(f"story: first cells {p.first_cells:.1f} s, whole story {p.whole:.1f} s, attack {p.attack_page:.1f} s, "
          f"speed-up vs baseline {speedup:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
