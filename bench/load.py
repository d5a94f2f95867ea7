"""A classroom against a real server: N browser sessions open Explain (some Attack) at once.

Starts ``streamlit run app.py`` on 127.0.0.1 (its own free port) with the given model
(``RRS_DEFAULT_MODEL``) and memory budget (``RRS_MEMORY_BUDGET``), opens ``--sessions``
browser contexts in one Debian chromium, gives each its own image (the bundled samples in
turn, every third session an upload of its own), then — all at once — every session opens
Explain (every ``--attack-every``-th presses *Run attack* on Attack instead) and waits for its
result. Meanwhile a thread polls ``/_stcore/health``. Printed: per-session latency from the
click to the finished page, the slowest health answer, the server's idle and peak RSS (VmHWM).

    python bench/load.py [--sessions 30] [--model tiny] [--budget 1GB] [--attack-every 5]

The harness (:func:`serve`, :func:`classroom`) is what ``tests/test_load.py`` runs.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--disable-gpu", "--disable-quic", "--no-sandbox", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
SAMPLES = ['astronaut', 'brick', 'camera', 'chelsea', 'clock', 'coffee', 'coins', 'gravel', 'horse', 'hubble',
           'retina', 'rocket']


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid: int, field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of a process in bytes."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


@contextmanager
def serve(model: str | None = "tiny", budget: str | None = "1GB", port: int | None = None, log=None,
          env: dict | None = None):
    """A streamlit server of this checkout on 127.0.0.1; yields ``(url, pid)``. ``model`` and
    ``budget`` set ``RRS_DEFAULT_MODEL`` / ``RRS_MEMORY_BUDGET`` (``None``: the app's defaults);
    ``env``: more environment variables of the server (e.g. ``RRS_MAX_JOBS``)."""
    port = port or free_port()
    env = {**os.environ, **(env or {})}
    env.update({k: v for k, v in (("RRS_DEFAULT_MODEL", model), ("RRS_MEMORY_BUDGET", budget)) if v is not None})
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
         str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("streamlit did not become healthy")
            time.sleep(0.5)
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


_POLLER = r"""
import sys, time, urllib.request
url, every = sys.argv[1], float(sys.argv[2])
while True:
    t0 = time.perf_counter()
    try:
        ok = urllib.request.urlopen(url, timeout=5).read() == b"ok"
    except OSError:
        ok = False
    print(time.perf_counter() - t0 if ok else "inf", flush=True)
    time.sleep(every)
"""


class HealthPoller:
    """Polls ``/_stcore/health`` every ``every`` s from its own process (so the harness's own
    work never delays a poll) and records each answer's latency (inf = failed)."""

    def __init__(self, url: str, every: float = 0.25):
        self.url, self.every, self.latencies, self._proc = url, every, [], None

    def start(self):
        self._proc = subprocess.Popen([sys.executable, "-c", _POLLER, f"{self.url}/_stcore/health", str(self.every)],
                                      stdout=subprocess.PIPE, text=True)

    def stop(self):
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=10)
        self.latencies = [float(v) for v in out.split()]


def make_upload(folder: Path, i: int) -> Path:
    """A distinct synthetic photo for session ``i``."""
    rng = np.random.default_rng(1000 + i)
    arr = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    y, x = np.mgrid[:120, :160]
    arr[(x - 80) ** 2 + (y - 60) ** 2 < 40 ** 2] = rng.integers(0, 255, 3)
    path = folder / f"student_{i:02d}.png"
    Image.fromarray(arr).save(path)
    return path


def _niced_chromium(folder: Path) -> str:
    """Chromium at the lowest CPU priority: in a classroom the browsers run on the students'
    machines, so here they must not take the server's two cores from it. ``nice`` alone does
    not hold: run as root, chromium raises its own processes (browser and GPU process to
    nice −8, page renderers to 0), so the wrapper also drops ``CAP_SYS_NICE`` (``setpriv``)."""
    wrapper = folder / "chromium-niced"
    drop = "setpriv --bounding-set -sys_nice --inh-caps -sys_nice -- " if shutil.which("setpriv") else ""
    wrapper.write_text(f"#!/bin/sh\nexec {drop}nice -n 19 {CHROMIUM} \"$@\"\n")
    wrapper.chmod(0o755)
    return str(wrapper)


def _idle(page):
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE)


def _setup(browser, url: str, i: int, attack: bool, folder: Path, timeout_ms: int) -> dict:
    """One student: Home, their image (sample or upload); Attack page if they attack."""
    context = browser.new_context(viewport={"width": 1280, "height": 1600}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    page.wait_for_selector(IDLE)
    if i % 3 == 2:
        path = make_upload(folder, i)
        _upload(page, path)
        image = {"upload": str(path)}
    else:
        name = SAMPLES[i % len(SAMPLES)]
        page.get_by_role("combobox", name="Sample image").click()
        page.get_by_role("option", name=re.compile(f"^{name}$")).first.click()
        image = {"sample": name}
    _idle(page)
    if attack:
        _nav(page, "Attack")
    return {"i": i, "context": context, "page": page, "attack": attack, "image": image}


def _upload(page, path: Path, tries: int = 3) -> None:
    """Give the sidebar's uploader a file. Right after a page's first render the uploader's
    input can drop a programmatic file (no upload request is sent; about one in 20 sessions
    here): if the page does not confirm the upload within 10 s, set the file again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    confirm = page.get_by_text(f"Using your upload {path.name}")
    for attempt in range(tries):
        page.get_by_test_id("stSidebar").get_by_test_id("stFileUploader").first.locator(
            'input[type="file"]').set_input_files(str(path))
        try:
            confirm.wait_for(timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise


def _nav(page, name: str):
    page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink").filter(has_text=name).click()
    page.wait_for_selector(f'h1:has-text("{name}")')
    _idle(page)


def _go(s: dict):
    """The click that starts the student's computation (a DOM click: no waiting)."""
    page = s["page"]
    if s["attack"]:
        target = page.get_by_test_id("stButton").get_by_role("button", name="Run attack")
    else:
        target = page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink").filter(has_text="Explain")
    target.evaluate("el => el.click()")
    s["clicked"] = time.perf_counter()


def _ready(s: dict) -> bool:
    page = s["page"]
    heading = "Attack" if s["attack"] else "Explain"
    return bool(page.locator(f'h1:has-text("{heading}")').count() and page.locator(IDLE).count()
                and page.locator('[data-testid="stDownloadButton"]').count())


def _wait_all(students: list, timeout_s: float) -> None:
    """Poll every page until each shows its finished result; the time it was first seen is its end."""
    deadline = time.perf_counter() + timeout_s
    pending = list(students)
    while pending:
        if time.perf_counter() > deadline:
            for s in pending:  # what the stuck pages show, for the report
                s["page"].evaluate("() => document.querySelectorAll('section, [data-testid=stMain]')"
                                   ".forEach(e => e.scrollTo(0, e.scrollHeight))")
                s["page"].screenshot(path=f"/tmp/rrs_load_stuck_{s['i']}.png")
            raise TimeoutError(f"{len(pending)} sessions had no result after {timeout_s:.0f} s: "
                               + ", ".join(f"#{s['i']}{' (attack)' if s['attack'] else ''}" for s in pending))
        for s in list(pending):
            if _ready(s):
                s["done"] = time.perf_counter()
                pending.remove(s)
        time.sleep(0.2)


def _finish(s: dict) -> dict:
    """The student's JSON export and the errors the page shows."""
    page = s["page"]
    page.wait_for_selector(IDLE)
    errors = page.get_by_test_id("stException").count() + page.get_by_test_id("stAlert").filter(
        has_text=re.compile("error|Error|memory|refused")).count()
    with page.expect_download() as info:
        page.get_by_test_id("stDownloadButton").get_by_role("button", name="JSON (settings + results)").click()
    export = json.loads(Path(info.value.path()).read_text())
    return {"i": s["i"], "attack": s["attack"], "image": s["image"], "errors": errors, "export": export,
            "latency": s["done"] - s["clicked"]}


def classroom(url: str, pid: int, sessions: int = 30, attack_every: int = 5, folder: Path | None = None,
              timeout_ms: int = 600_000) -> dict:
    """Run the classroom against a server; returns per-session records and server measurements."""
    from playwright.sync_api import sync_playwright

    folder = Path(folder or "/tmp/rrs_load")
    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_niced_chromium(folder), args=ARGS)
        try:
            students = [_setup(browser, url, i, attack_every > 0 and i % attack_every == attack_every - 1,
                               folder, timeout_ms) for i in range(sessions)]
            idle_rss = status(pid, "VmRSS")
            idle_hwm = status(pid, "VmHWM")
            health = HealthPoller(url)
            health.start()
            t0 = time.perf_counter()
            for s in students:
                _go(s)
            _wait_all(students, timeout_ms / 1000)
            wall = time.perf_counter() - t0
            records = [_finish(s) for s in students]
            health.stop()
        finally:
            browser.close()
    return {"records": records, "idle_rss": idle_rss, "idle_hwm": idle_hwm, "peak_rss": status(pid, "VmHWM"),
            "health": health.latencies, "wall": wall}


def report(out: dict, budget: int) -> str:
    lat = sorted(r["latency"] for r in out["records"])
    mb = 2 ** 20
    return "\n".join([
        f"sessions {len(lat)} ({sum(r['attack'] for r in out['records'])} attacking), all done in {out['wall']:.1f} s",
        f"latency click → result: median {statistics.median(lat):.1f} s, 90% {lat[int(0.9 * (len(lat) - 1))]:.1f} s, "
        f"max {lat[-1]:.1f} s",
        f"health latencies (s, in order): {' '.join(f'{h:.2f}' for h in out['health'])}\n"
        f"health: {len(out['health'])} polls, median {statistics.median(out['health']) * 1000:.0f} ms, "
        f"slowest {max(out['health']) * 1000:.0f} ms, {sum(h >= 1.0 for h in out['health'])} at or over 1 s",
        f"server RSS: idle {out['idle_rss'] / mb:.0f} MB, peak (VmHWM) {out['peak_rss'] / mb:.0f} MB "
        f"(+{(out['peak_rss'] - out['idle_rss']) / mb:.0f} MB; budget {budget / mb:.0f} MB)",
        f"errors shown: {sum(r['errors'] for r in out['records'])}"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--attack-every", type=int, default=5, help="every n-th session attacks (0: none)")
    ap.add_argument("--model", default="tiny", help="RRS_DEFAULT_MODEL of the server")
    ap.add_argument("--budget", default="1GB", help="RRS_MEMORY_BUDGET of the server")
    args = ap.parse_args(argv)
    from rrs.compute.memory import available_memory, parse_budget
    with serve(args.model, args.budget) as (url, pid):
        out = classroom(url, pid, args.sessions, args.attack_every)
    print(f"model {args.model}, {os.cpu_count()} cores, budget {args.budget}")
    print(report(out, parse_budget(args.budget, available_memory())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
