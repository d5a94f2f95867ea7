"""The class story timed in a real browser, as a new user would meet it (issue 16's table; issue 19's
predictions within ±30%).

Starts the app (``streamlit run`` of this checkout, as the browser tests do: :func:`bench.load.serve`)
and drives headless Debian chromium through Playwright. For each user action it reads the predicted
time the page shows before or while the action runs (``"predicted about 40 s"``, a button's
``"(about 5 min)"``) and times, on the wall clock of this process, the moment from the click to the
result on screen:

* **Explain** — one map at the page defaults (it computes when the page opens: from the sidebar click);
* **Certify** — the time to the first certified cells on screen (the first live checkpoint with a
  cell certified on its own) and to the complete run ("Complete: T = …");
* **Try to break it** — "Attack both maps at the certified radius" under the completed certificate,
  until its sentence and panels are on screen;
* **Attack** — the page default (three methods) until the last method's result and the summary;
* **Learn** — step 3 ("Attack the map") and step 6 ("Compute the guarantee");
* **Compare** — "Run comparison" until the live charts are drawn.

Each preset (``--preset default|class|both``; ``class`` = the sidebar's "Fast preset (class use)")
gets a fresh server, so no result comes from the server's cache and every prediction starts from
what a new server knows. Every action has its own timeout (``--timeout-scale`` stretches them all);
one that runs out is reported and the script moves on. The text on screen is read by a small
recorder in the page (every distinct line of the main area with the time it appeared), so a
progress text that shows only for a moment is still caught.

Load: the 1-, 5- and 15-minute load averages are printed at the start and the end, and for every
action the *other* work on the machine while it ran (CPU seconds of every process outside this
script, its browser and its server, per second of the action, from ``/proc``). An action during
which other work took more than ``--quiet`` cores is flagged "LOADED" in the table: a timing meant
for issue 16 must be rerun.

    python bench/browser.py [--model tiny|efficientnet_lite0|…] [--preset default|class|both]
                            [--only explain,certify,break,attack,learn3,learn6,compare]
                            [--json F] [--timeout-scale X] [--shots DIR]

Selectors are the browser tests' (``tests/test_browser.py``: ``idle``, ``nav``, button and text
roles): visible texts and roles only, never layout positions.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from test_browser import ARGS, CHROMIUM, IDLE, button, idle, nav, nav_link  # noqa: E402

ACTIONS = ("explain", "certify", "break", "attack", "learn3", "learn6", "compare")
PRESETS = {"default": False, "class": True}

#: Every distinct line of the main area and the time (s since the epoch) it last appeared
#: (``seen``: a line that goes away is forgotten, so its next appearance gets a new time), and
#: every appearance in order (``log``), so a progress text that came and went is still read.
RECORDER = """(() => {
  if (window.__rrs) return;
  window.__rrs = {seen: {}, log: []};
  setInterval(() => {
    const parts = [...document.querySelectorAll('[data-testid="stMain"], [data-testid="stProgress"]')];
    if (!parts.length) return;
    const now = Date.now() / 1000, cur = new Set();
    for (const raw of parts.map(e => e.innerText || '').join('\\n').split('\\n')) {
      const line = raw.trim();
      if (line && line.length < 4000) cur.add(line);     // the Attack takeaway of three methods is ~450
    }
    const seen = window.__rrs.seen;
    for (const l of Object.keys(seen)) if (!cur.has(l)) delete seen[l];
    for (const l of cur) if (!(l in seen)) {
      seen[l] = now;
      if (window.__rrs.log.length < 50000) window.__rrs.log.push([now, l]);
    }
  }, __EVERY__);
})();"""

#: A predicted time as the pages write it (rrs.timing.format_seconds).
PRED = re.compile(r"(under a second|about ([\d.,]+) (s|min|h))\b")
UNIT = {"s": 1.0, "min": 60.0, "h": 3600.0}


def parse_seconds(text: str) -> float | None:
    """Seconds of the first predicted time in ``text`` ("about 40 s", "about 3 min", "under a
    second" = 0.5 s); None when there is none."""
    m = PRED.search(text or "")
    if not m:
        return None
    if m.group(1) == "under a second":
        return 0.5
    return float(m.group(2).replace(",", "")) * UNIT[m.group(3)]


def said_range(text: str) -> tuple[float, float] | None:
    """The seconds the first predicted time in ``text`` stands for, as written: "under a second"
    is (0, 1); "about 6 s" is 5.5–6.5 s (whole seconds), "about 3 min" 2.5–3.5 min, "about 2.0 h"
    1.95–2.05 h (:func:`rrs.timing.format_seconds` rounds so); None when there is none."""
    m = PRED.search(text or "")
    if not m:
        return None
    if m.group(1) == "under a second":
        return 0.0, 1.0
    value, unit = float(m.group(2).replace(",", "")), m.group(3)
    half = 0.05 if unit == "h" else 0.5
    return max(value - half, 0.0) * UNIT[unit], (value + half) * UNIT[unit]


# ------------------------------------------------------------------------------ CPU accounting

def _busy_jiffies_total() -> int:
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]          # all but idle and iowait


def _own_jiffies(root: int, sessions: set[int]) -> int:
    """CPU time (utime + stime, and that of reaped children) of ``root``, its descendants (the
    browser) and every process in ``sessions`` (the app's server runs in a session of its own)."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        # rest[1] = ppid (field 4), rest[3] = session (field 6), rest[11:15] = utime, stime, cutime, cstime
        procs[int(d)] = (int(rest[1]), int(rest[3]), sum(int(v) for v in rest[11:15]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    own, todo = set(), [root] + [pid for pid, (_, sid, _) in procs.items() if sid in sessions]
    while todo:
        pid = todo.pop()
        if pid not in own:
            own.add(pid)
            todo += children.get(pid, [])
    return sum(procs[pid][2] for pid in own if pid in procs)


class OtherLoad:
    """Cores used by work outside this script's own process sessions (itself, its browser,
    the app's server) between :meth:`start` and :meth:`stop`."""

    HZ = os.sysconf("SC_CLK_TCK")

    def __init__(self, sessions: set[int]):
        self.root, self.sessions = os.getpid(), sessions

    def start(self):
        self._t, self._all, self._own = time.time(), _busy_jiffies_total(), _own_jiffies(self.root, self.sessions)

    def stop(self) -> float:
        dt = max(time.time() - self._t, 1e-3)
        other = (_busy_jiffies_total() - self._all) - (_own_jiffies(self.root, self.sessions) - self._own)
        return max(other, 0) / self.HZ / dt


def _secs(s: float | None) -> str:
    return "—" if s is None else ("< 1 s" if s < 1 else f"{s:.0f} s")


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# -------------------------------------------------------------------------------- measurements

@dataclass
class Timing:
    action: str
    preset: str
    predicted_s: float | None = None
    predicted_text: str = ""
    actual_s: float | None = None
    #: seconds from the moment the prediction came on screen to the result, when it came only
    #: after the click (Explain's first map: the page measures the device's speed first, then
    #: predicts the map); what the prediction covers, so the ratio is taken against it
    covered_s: float | None = None
    status: str = "ok"            # ok | timeout | error | cached | skipped
    note: str = ""
    other_cores: float | None = None

    @property
    def taken_s(self) -> float | None:
        return self.actual_s if self.covered_s is None else self.covered_s

    @property
    def ratio(self) -> float | None:
        taken = self.taken_s
        if self.predicted_s is None or taken is None or taken <= 0:
            return None
        return self.predicted_s / taken

    @property
    def within(self) -> bool | None:
        """The time taken is within ±30% of what the page said, its rounding included ("under a
        second": at most 1.3 s; "about 6 s": 5.5/1.3 to 6.5·1.3 s)."""
        said, taken = said_range(self.predicted_text), self.taken_s
        if said is None or taken is None or taken <= 0:
            if self.ratio is None:
                return None
            return 1 / 1.3 <= self.ratio <= 1.3
        return said[0] / 1.3 <= taken <= said[1] * 1.3


@dataclass
class Runner:
    page: object
    preset: str
    timeout_scale: float
    load: OtherLoad
    shots: Path | None
    quiet: float
    results: list = field(default_factory=list)

    # -- reading the page
    def lines(self) -> dict:
        return self.page.evaluate("window.__rrs ? window.__rrs.seen : {}") or {}

    def appeared(self, since: float) -> dict:
        """Every line that appeared at or after ``since`` (also those gone again): line → first time."""
        out = {}
        for at, line in self.page.evaluate(f"window.__rrs ? window.__rrs.log.filter(e => e[0] >= {since - 0.05}) : []"):
            out.setdefault(line, at)
        return out

    def wait_line(self, pattern: str, since: float, deadline: float, every: float = 0.15) -> tuple[float | None, str]:
        """The first line matching ``pattern`` that appeared at or after ``since``: ``(time, line)``;
        ``(None, "")`` at the deadline."""
        rx = re.compile(pattern)
        while time.time() < deadline:
            hits = sorted((t, l) for l, t in self.appeared(since).items() if rx.search(l))
            if hits:
                return hits[0]
            self.page.wait_for_timeout(int(every * 1000))
        return None, ""

    def predicted_line(self, pattern: str, before: dict, during: dict | None = None) -> str:
        """The line matching ``pattern`` that carries a predicted time: shown at the click, else
        shown while the action ran."""
        rx = re.compile(pattern)
        for lines in (before, during or {}):
            for line in sorted(lines, key=lambda l: lines[l]):
                if rx.search(line) and parse_seconds(line) is not None:
                    return line
        return ""

    def near_button(self, locator) -> str:
        """The text nearest to a button that carries a predicted time: the button's closest
        enclosing element whose text says "predicted" (layout-independent)."""
        return locator.evaluate("""b => { for (let e = b; e; e = e.parentElement) {
            const t = e.innerText || ''; if (/predicted/.test(t)) return t; } return ''; }""")

    def stop_running(self) -> None:
        """After a timeout: press whatever Stop button shows, so the next action starts on an idle server."""
        for name in ("Stop (keep the result so far)", "Stop"):
            b = self.page.get_by_test_id("stButton").get_by_role("button", name=name)
            if b.count():
                try:
                    b.first.click(timeout=5000)
                    idle(self.page)
                except Exception:                          # noqa: BLE001 - best effort
                    pass
                return

    def shot(self, name: str) -> None:
        if self.shots is not None:
            self.page.screenshot(path=str(self.shots / f"{self.preset}_{name}.png"))

    # -- one action
    def timed(self, name: str, timeout: float, fn) -> None:
        """Run action ``fn(deadline)`` (it returns its :class:`Timing` rows), report each row."""
        budget = timeout * self.timeout_scale
        start = time.time()
        print(f"[{self.preset}] {name}: running (timeout {budget:.0f} s, load {loadavg()}) …", flush=True)
        self.load.start()
        try:
            rows = fn(time.time() + budget)
        except Exception as e:                             # noqa: BLE001 - report and go on
            rows = [Timing(name, self.preset, status="error",
                           note=f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}")]
        other = self.load.stop()
        if any(t.status == "timeout" for t in rows):
            print(f"[{self.preset}] {name}: TIMED OUT after {budget:.0f} s; continuing with the next action",
                  flush=True)
            self.stop_running()
        for t in rows:
            t.other_cores = other
            ratio = f"{t.ratio:.2f}" if t.ratio is not None else "—"
            actual = f"{t.actual_s:.1f} s" if t.actual_s is not None else "—"
            if t.covered_s is not None:
                actual += f" ({t.covered_s:.1f} s after the prediction came on screen)"
            pred = _secs(t.predicted_s)
            print(f"[{self.preset}] {t.action}: {t.status}; predicted {pred} ({t.predicted_text or 'not shown'}), "
                  f"actual {actual}, predicted/actual {ratio}; other work {other:.2f} cores"
                  + (f"; {t.note}" if t.note else ""), flush=True)
        self.shot(name)
        if self.shots is not None:                 # every line the action showed, seconds from its start
            log = sorted((at, line) for line, at in self.appeared(start).items())
            (self.shots / f"{self.preset}_{name}.lines.txt").write_text(
                "".join(f"{at - start:8.2f}  {line[:300]}\n" for at, line in log))
        self.results += rows

    def click_and_wait(self, t: Timing, deadline: float, click, done: str, predicted: str,
                       before_text: str = "") -> float:
        """Click, then wait for a line matching ``done``; fills ``t`` (actual time from the click,
        predicted time from ``before_text`` or else the line matching ``predicted``); returns the
        click time."""
        before = self.lines()
        t0 = time.time()
        click()
        hit, line = self.wait_line(done, t0, deadline)
        during = self.appeared(t0)
        pre = next((l.strip() for l in before_text.splitlines() if parse_seconds(l) is not None), "")
        t.predicted_text = pre or self.predicted_line(predicted, before, during)
        t.predicted_s = parse_seconds(t.predicted_text)
        if hit is None:
            t.status, t.note = "timeout", f"no line matching {done!r} on screen"
        else:
            t.actual_s = hit - t0
            shown = during.get(t.predicted_text) if not pre and t.predicted_text not in before else None
            if shown is not None and shown - t0 > 1.0:
                t.covered_s = hit - shown
            if re.search(r"from (the )?cache", line):
                t.status = "cached"
        return t0

    def _on(self, title: str) -> None:
        if title not in self.page.locator("h1").first.inner_text():
            nav(self.page, title)

    # -- the actions (each returns its rows) ----------------------------------------------------
    def explain(self, deadline: float) -> list:
        t = Timing("explain", self.preset)
        if "Explain" in self.page.locator("h1").first.inner_text():
            nav(self.page, "Home")
        # the page computes its map when it opens: timed from the sidebar click
        self.click_and_wait(t, deadline, lambda: nav_link(self.page, "Explain").click(),
                            done=r"(computed now in|from cache \(computed earlier).* · seed ",
                            predicted=r"Computing the .* map \(predicted")
        job = next((float(m.group(1)) for line in self.lines() if (m := re.search(r"computed now in ([\d.]+) s", line))),
                   None)
        if job and t.predicted_s:      # a short job: how much of the wait was the job, how much drawing
            t.note = f"the job itself {job:.2f} s (predicted/job {t.predicted_s / job:.2f}), the rest drawing"
        idle(self.page)
        return [t]

    def certify(self, deadline: float) -> list:
        """Two rows from one run: the first certified cells on screen, and the complete run."""
        self._on("Certify")
        first, whole = Timing("certify first cells", self.preset), Timing("certify complete", self.preset)
        t0 = self.click_and_wait(whole, deadline, lambda: button(self.page, "Certify").first.click(),
                                 done=r"Complete: T = ", predicted=r"predicted .*checkpoints at T = ")
        rx = re.compile(r"cells on their own: ([\d,]+)")
        hits = sorted((at, l) for l, at in self.appeared(t0).items()
                      if (m := rx.search(l)) and int(m.group(1).replace(",", "")) > 0)
        m = re.search(r"first cells at T = [\d,]+ in (.*?)(·|$)", whole.predicted_text)
        if m:                                  # the caption predicts the first cells too
            first.predicted_text, first.predicted_s = m.group(0).strip(" ·"), parse_seconds(m.group(1))
        if hits:
            first.actual_s, first.note = hits[0][0] - t0, f"first live checkpoint with '{hits[0][1]}'"
        else:
            first.status = "timeout" if whole.status == "timeout" else "error"
            first.note = "no live checkpoint with a cell certified on its own was seen"
        if whole.status != "timeout":
            idle(self.page)
        return [first, whole]

    def break_it(self, deadline: float) -> list:
        t = Timing("try to break it", self.preset)
        self._on("Certify")
        b = self.page.get_by_test_id("stButton").get_by_role(
            "button", name=re.compile(r"Attack both maps at the certified radius")).first
        if not b.count():
            t.status, t.note = "skipped", "no 'Attack both maps' button (run Certify first; nothing certified?)"
            return [t]
        b.scroll_into_view_if_needed()
        self.click_and_wait(t, deadline, b.click, done=r"samples per look .*; [\d.]+ s\.",
                            predicted=r"Attack both maps at the certified radius", before_text=b.inner_text())
        if t.status != "timeout":
            idle(self.page)
        return [t]

    def attack(self, deadline: float) -> list:
        t = Timing("attack (page default)", self.preset)
        nav(self.page, "Attack")
        self.click_and_wait(t, deadline, lambda: button(self.page, "Run attack").first.click(),
                            done=r"What this shows", predicted=r"Press Run attack .*predicted")
        if t.status != "timeout":
            idle(self.page)
        return [t]

    def _learn(self, name: str, deadline: float, label: str, done: str) -> list:
        t = Timing(name, self.preset)
        self._on("Learn")
        b = button(self.page, label).first
        b.scroll_into_view_if_needed()
        self.click_and_wait(t, deadline, b.click, done=done, predicted=r"\(predicted",
                            before_text=self.near_button(b))
        if t.status != "timeout":
            idle(self.page)
        return [t]

    def learn3(self, deadline: float) -> list:
        return self._learn("learn step 3 (attack)", deadline, "Attack the map", r"patches are still important\.")

    def learn6(self, deadline: float) -> list:
        return self._learn("learn step 6 (guarantee)", deadline, "Compute the guarantee",
                           r"The Certify page shows every certificate")

    def compare(self, deadline: float) -> list:
        t = Timing("compare (live charts)", self.preset)
        nav(self.page, "Compare")
        self.click_and_wait(t, deadline, lambda: button(self.page, "Run comparison").first.click(),
                            done=r"Estimate only \(plug-in\)", predicted=r"Press Run comparison .*predicted")
        if t.status != "timeout":
            idle(self.page)
        return [t]


#: Generous timeouts (s) per action at the real model's page defaults on a quiet machine.
TIMEOUTS = {"explain": 300, "certify": 2400, "break": 2400, "attack": 1800, "learn3": 900, "learn6": 900,
            "compare": 1800}


def run_preset(browser, preset: str, model: str | None, only: list[str], args, sessions: set[int], url: str) -> list:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script(RECORDER.replace("__EVERY__", str(int(args.poll))))
    page = context.new_page()
    page.set_default_timeout(int(600_000 * args.timeout_scale))
    try:
        t0 = time.time()
        page.goto(url)
        page.wait_for_selector(IDLE)
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for()      # Home's prediction: the model is loaded
        print(f"[{preset}] app open with the model loaded in {time.time() - t0:.1f} s", flush=True)
        if PRESETS[preset]:
            page.get_by_text("Fast preset (class use)").click()
            idle(page)
        r = Runner(page, preset, args.timeout_scale, OtherLoad(sessions), args.shots, args.quiet)
        for name in only:
            r.timed(name, TIMEOUTS[name], r.break_it if name == "break" else getattr(r, name))
        return r.results
    finally:
        context.close()


def table(results: list, quiet: float) -> str:
    rows = ["| preset | action | predicted | actual | predicted/actual | within ±30% | other work (cores) | status |",
            "|---|---|---|---|---|---|---|---|"]
    for t in results:
        ratio = t.ratio
        within = "—" if t.within is None else ("yes" if t.within else "NO")
        loaded = t.other_cores is not None and t.other_cores > quiet
        rows.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            t.preset, t.action,
            _secs(t.predicted_s),
            "—" if t.actual_s is None else f"{t.actual_s:.1f} s"
            + ("" if t.covered_s is None else f" ({t.covered_s:.1f} s after the prediction)"),
            "—" if ratio is None else f"{ratio:.2f}",
            within,
            "—" if t.other_cores is None else f"{t.other_cores:.2f}" + (" LOADED" if loaded else ""),
            t.status + (f" ({t.note})" if t.status != "ok" and t.note else "")))
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model key (default: the app's default, EfficientNet-Lite0)")
    ap.add_argument("--preset", default="both", choices=["default", "class", "both"])
    ap.add_argument("--only", default=",".join(ACTIONS), help="comma-separated subset of " + ",".join(ACTIONS))
    ap.add_argument("--poll", type=float, default=60,
                    help="ms between two reads of the page's text (each read lays the page out, on the "
                         "cores the app computes on; default 60)")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    ap.add_argument("--timeout-scale", type=float, default=1.0, help="multiply every action's timeout")
    ap.add_argument("--quiet", type=float, default=0.25,
                    help="other work (cores) above which an action is flagged LOADED (default 0.25)")
    ap.add_argument("--shots", type=Path, default=None,
                    help="save a screenshot and the lines shown (seconds from the action's start) after every action here")
    args = ap.parse_args(argv)
    only = [a.strip() for a in args.only.split(",") if a.strip()]
    bad = [a for a in only if a not in ACTIONS]
    if bad:
        ap.error(f"unknown action(s) {bad}; choose from {', '.join(ACTIONS)}")
    if not Path(CHROMIUM).exists():
        print(f"Debian chromium is missing ({CHROMIUM}): apt-get install -y chromium", file=sys.stderr)
        return 2
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    presets = ["default", "class"] if args.preset == "both" else [args.preset]

    from playwright.sync_api import sync_playwright

    from bench import load

    start_load = loadavg()
    print(f"load average at start: {start_load}  ({os.cpu_count()} CPUs)", flush=True)
    print(f"model: {args.model or 'the app default'}; presets: {', '.join(presets)}; actions: {', '.join(only)}",
          flush=True)
    t_start = time.time()
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for preset in presets:
                # a fresh server per preset: nothing from the cache, predictions from what a new server knows
                with load.serve(model=args.model, budget=None) as (url, pid):
                    sessions = {pid}
                    results += run_preset(browser, preset, args.model, only, args, sessions, url)
        finally:
            browser.close()
    end_load = loadavg()
    print(f"load average at end: {end_load}; wall time {time.time() - t_start:.0f} s", flush=True)
    print()
    print(table(results, args.quiet))
    flagged = [t for t in results if t.other_cores is not None and t.other_cores > args.quiet]
    if flagged:
        print(f"\nLOADED: other work used more than {args.quiet} cores during {len(flagged)} action(s) — "
              "these timings are not a quiet-machine measurement.")
    if args.json:
        args.json.write_text(json.dumps({
            "model": args.model or "default", "presets": presets, "load_start": start_load, "load_end": end_load,
            "cpus": os.cpu_count(), "quiet_threshold_cores": args.quiet,
            "results": [{**asdict(t), "ratio": t.ratio, "within": t.within} for t in results]}, indent=2))
    return 0 if all(t.status in ("ok", "skipped") for t in results) else 1


if __name__ == "__main__":
    sys.exit(main())
