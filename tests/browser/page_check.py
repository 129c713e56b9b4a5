#!/usr/bin/env python3
"""Loads a page in headless Chromium (through chromedriver, with the
standard library's HTTP client speaking WebDriver) and checks or reads it.

  page_check.py demo URL   the browser_echo criterion: 6 s after the page's
                           time origin, #echoed >= 3 and #ticks >= 2
  page_check.py bench URL  waits for window.benchDone and prints
                           window.benchReport

Options: --screenshot FILE saves a PNG of the page at the end.
Exit status 0 when the check passes.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,800",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    def __init__(self):
        self.port = free_port()
        binary = shutil.which("chromedriver") or "/usr/bin/chromedriver"
        self.proc = subprocess.Popen(
            [binary, f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 20
        while True:
            try:
                self.call("GET", "/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.time() > deadline or self.proc.poll() is not None:
                    raise SystemExit("chromedriver did not start")
                time.sleep(0.1)
        self.profile = tempfile.mkdtemp(prefix="anyloop-chromium-")
        caps = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": shutil.which("chromium") or "/usr/bin/chromium",
                "args": CHROME_ARGS + [f"--user-data-dir={self.profile}"],
            },
        }
        r = self.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        self.session = r["value"]["sessionId"]
        self.call("POST", self.s("/timeouts"), {"script": 120_000, "pageLoad": 60_000})

    def s(self, path):
        return f"/session/{self.session}{path}"

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=180) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise SystemExit(f"WebDriver {method} {path} failed: {e.read().decode(errors='replace')}")

    def run_async(self, script):
        return self.call("POST", self.s("/execute/async"), {"script": script, "args": []})["value"]

    def screenshot(self, path):
        png = self.call("GET", self.s("/screenshot"))["value"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))

    def close(self):
        try:
            self.call("DELETE", self.s(""))
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)


DEMO_SCRIPT = """
const done = arguments[arguments.length - 1];
const read = (id) => { const e = document.getElementById(id); return e ? Number(e.textContent) : NaN; };
setTimeout(() => done({
  echoed: read('echoed'), ticks: read('ticks'), at_ms: performance.now(),
  status: (document.getElementById('status') || {}).textContent || '',
}), Math.max(0, 6000 - performance.now()));
"""

BENCH_SCRIPT = """
const done = arguments[arguments.length - 1];
const poll = () => window.benchDone ? done(window.benchReport) : setTimeout(poll, 50);
poll();
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["demo", "bench"])
    ap.add_argument("url")
    ap.add_argument("--screenshot")
    args = ap.parse_args()
    d = Driver()
    try:
        d.call("POST", d.s("/url"), {"url": args.url})
        if args.mode == "demo":
            r = d.run_async(DEMO_SCRIPT)
            ok = r["echoed"] >= 3 and r["ticks"] >= 2
            print(
                f"page check: {r['at_ms']:.0f} ms after load started: echoed={r['echoed']:g} ticks={r['ticks']:g} "
                f"(need >= 3 and >= 2): {'ok' if ok else 'FAILED'}; status: {r['status']!r}"
            )
        else:
            r = d.run_async(BENCH_SCRIPT)
            print(r)
            ok = "error" not in r.lower()
        if args.screenshot:
            d.screenshot(args.screenshot)
    finally:
        d.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
