#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""report_browser.py: opens a localist audit report in headless Chromium (Debian's
`chromium`) over the DevTools protocol on a pipe, with every network request refused,
and checks it as a reviewer would use it: no console error, every section present and
drawn, a click on a token shows its attention targets, a rule's low-fidelity link and a
block's context open the token view. Writes a screenshot and prints a JSON summary.
Usage: report_browser.py REPORT.html SCREENSHOT.png [--expect-rules] [--expect-pool] [--shot-at SECTION]
(--shot-at: the section the screenshot shows, "tokens" by default, "top" for the page's start)
Exit status 0 when every check passes, 1 otherwise (the failures are printed)."""
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

SECTIONS = ["card", "dial", "blocks", "tokens", "rules", "bounds", "timeline", "pool"]
TIMEOUT_S = 60


class Browser:
    """Chromium driven through --remote-debugging-pipe (fd 3: commands in, fd 4: out)."""

    def __init__(self, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def child():
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            raise SystemExit("report_browser: chromium is not installed (tools/setup.sh installs it)")
        args = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--remote-debugging-pipe", "--user-data-dir=" + profile, "--window-size=1280,2000",
                # No network: every host resolves to nothing and no proxy is reachable.
                "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=child, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(profile, "chromium.log"), "w"))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def read_message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if ready:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe (see chromium.log)")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=TIMEOUT_S):
        want = self.send(method, params, session)
        deadline = time.time() + timeout
        while True:
            m = self.read_message(deadline)
            if m.get("id") == want:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, name, timeout=TIMEOUT_S):
        deadline = time.time() + timeout
        for i, m in enumerate(self.events):
            if m.get("method") == name:
                return self.events.pop(i)
        while True:
            m = self.read_message(deadline)
            if m.get("method") == name:
                return m
            self.events.append(m)

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    page, shot = os.path.abspath(sys.argv[1]), sys.argv[2]
    expect_rules = "--expect-rules" in sys.argv
    expect_pool = "--expect-pool" in sys.argv
    shot_at = sys.argv[sys.argv.index("--shot-at") + 1] if "--shot-at" in sys.argv else "tokens"
    failures, summary = [], {}
    profile = tempfile.mkdtemp(prefix="localist-chromium-")
    b = Browser(profile)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            b.call(domain + ".enable", None, s)
        t0 = time.time()
        b.call("Page.navigate", {"url": "file://" + page}, s)
        b.wait_event("Page.loadEventFired")
        ev = lambda expr: b.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, s)["result"].get("value")
        deadline = time.time() + TIMEOUT_S
        while ev("document.body && document.body.dataset.rendered") != "yes":
            if time.time() > deadline:
                failures.append("the page never finished rendering (document.body.dataset.rendered)")
                break
            time.sleep(0.05)
        summary["load_s"] = round(time.time() - t0, 3)
        summary["navigation_ms"] = ev("(() => { const n = performance.getEntriesByType('navigation')[0]; "
                                      "return n ? Math.round(n.loadEventEnd - n.startTime) : null; })()")
        summary["resources_fetched"] = ev("performance.getEntriesByType('resource').length")
        if summary["resources_fetched"]:
            failures.append(f"the page fetched {summary['resources_fetched']} resource(s); it must need none")
        for sec in SECTIONS:
            n = ev(f"(() => {{ const e = document.querySelector('#{sec} .body'); return e ? e.children.length : -1; }})()")
            if n is None or n <= 0:
                failures.append(f"section #{sec} is missing or empty")
        summary["charts"] = ev("document.querySelectorAll('svg.chart').length")
        if not summary["charts"] or summary["charts"] < 5:
            failures.append(f"expected the curves, dial and bound charts, found {summary['charts']} svg.chart")
        summary["sweep_rows"] = ev("document.querySelectorAll('#dial table tr').length - 1")
        summary["tokens"] = ev("document.querySelectorAll('#token-text .tok').length")
        if not summary["tokens"]:
            failures.append("the token view shows no token")

        # A real mouse click on a token far enough in to have earlier tokens to attend to.
        def click_token(i):
            ev(f"document.querySelectorAll('#token-text .tok')[{i}].scrollIntoView({{block: 'center'}})")
            r = ev(f"(() => {{ const r = document.querySelectorAll('#token-text .tok')[{i}].getBoundingClientRect(); "
                   f"return [r.left + r.width / 2, r.top + r.height / 2]; }})()")
            for kind in ("mousePressed", "mouseReleased"):
                b.call("Input.dispatchMouseEvent", {"type": kind, "x": r[0], "y": r[1], "button": "left",
                                                    "clickCount": 1}, s)
        pos = min(40, (summary["tokens"] or 1) - 1)
        click_token(pos)
        summary["clicked_position"] = pos
        summary["selected"] = ev("(() => { const e = document.querySelector('#token-text .tok.selected'); "
                                 "return e ? +e.dataset.i : null; })()")
        summary["attention_targets"] = ev("document.querySelectorAll('#token-detail .attn-target').length")
        summary["attended_highlighted"] = ev("document.querySelectorAll('#token-text .tok.attended').length")
        # The highlighted tokens are exactly the listed targets other than the token itself.
        summary["targets_match"] = ev(
            "(() => { const want = new Set([...document.querySelectorAll('#token-detail .attn-target')]"
            ".map(e => +e.dataset.j).filter(j => j !== " + str(pos) + ")); const got = new Set([...document."
            "querySelectorAll('#token-text .tok.attended')].map(e => +e.dataset.i)); return want.size === got.size "
            "&& [...want].every(j => got.has(j)); })()")
        if summary["selected"] != pos:
            failures.append(f"clicking token {pos} did not select it (selected: {summary['selected']})")
        if not summary["attention_targets"]:
            failures.append("clicking a token showed no attention targets in #token-detail")
        if not summary["attended_highlighted"] or not summary["targets_match"]:
            failures.append("the attended tokens are not highlighted as listed")
        summary["detail_has_pi"] = ev("document.querySelector('#token-detail').textContent.includes('π')")
        if not summary["detail_has_pi"]:
            failures.append("the token detail does not show π")

        # A block's surest context opens its window in the token view.
        summary["context_links"] = ev("document.querySelectorAll('#blocks a.jump').length")
        if summary["context_links"]:
            ev("document.querySelector('#blocks a.jump').click()")
            summary["context_jump_selected"] = ev(
                "(() => { const a = document.querySelector('#blocks a.jump'); const e = document.querySelector("
                "'#token-text .tok.selected'); return !!e && +e.dataset.i === +a.dataset.i; })()")
            if not summary["context_jump_selected"]:
                failures.append("a block's context link did not select its token")
        if expect_rules:
            summary["rule_rows"] = ev("document.querySelectorAll('#rules table tr').length - 1")
            summary["low_fidelity_links"] = ev("document.querySelectorAll('#rules a.low-fidelity').length")
            if not summary["rule_rows"]:
                failures.append("the rules section lists no rule")
            if summary["low_fidelity_links"]:
                ev("document.querySelector('#rules a.low-fidelity').click()")
                ok = ev("(() => { const a = document.querySelector('#rules a.low-fidelity'); const e = document."
                        "querySelector('#token-text .tok.selected'); return !!e && +e.dataset.i === +a.dataset.i; })()")
                summary["low_fidelity_jump"] = ok
                if not ok:
                    failures.append("a low-fidelity query's link did not open it in the token view")
        if expect_pool:
            summary["pool_rows"] = ev("document.querySelectorAll('#pool table tr').length - 1")
            if not summary["pool_rows"]:
                failures.append("the pool section shows no window routing")

        ev("document.querySelectorAll('#token-text .tok')[" + str(pos) + "].click()")
        ev("window.scrollTo(0, 0)" if shot_at == "top" else
           f"window.scrollTo(0, document.querySelector('#{shot_at}').offsetTop - 60)")
        time.sleep(0.2)
        png = b.call("Page.captureScreenshot", {"format": "png"}, s)["data"]
        with open(shot, "wb") as f:
            f.write(base64.b64decode(png))

        # Console errors, uncaught exceptions, and browser log errors (a CSP violation, a refused fetch).
        errors = []
        for m in b.events:
            meth, p = m.get("method"), m.get("params", {})
            if meth == "Runtime.exceptionThrown":
                errors.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:300])
            elif meth == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append("console." + p["type"] + ": " + json.dumps(p.get("args"))[:300])
            elif meth == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                errors.append("log: " + p["entry"].get("text", "")[:300])
            elif meth == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if not url.startswith("file://") and not url.startswith("data:"):
                    errors.append("network request: " + url[:200])
        summary["console_errors"] = errors
        failures.extend(errors)
    except Exception as e:  # a hung or crashed browser is a failure, not a hang
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        b.close()
        shutil.rmtree(profile, ignore_errors=True)
    summary["failures"] = failures
    print(json.dumps(summary, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
