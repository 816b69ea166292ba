"""A minimal WebDriver client (standard library only) for Debian's chromedriver and chromium.

Both are taken from the PATH. The Chromium flags are those of lightstep-explorer's own browser
bench (crates/lightstep-explorer/tests/support/webdriver.rs), so that both measure the same
browser, plus the extra ones a caller passes.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

BASE_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--window-size=1400,900",
]


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Browser:
    def __init__(self, extra_args=(), logs=True):
        driver, chromium = shutil.which("chromedriver"), shutil.which("chromium")
        if not driver or not chromium:
            raise RuntimeError("chromium and chromedriver must be on the PATH "
                               "(Debian: apt-get install chromium chromium-driver)")
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="jui-chrome-")
        self.driver = subprocess.Popen(
            [driver, f"--port={self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                self._req("GET", "/status")
                break
            except Exception:
                time.sleep(0.1)
        args = BASE_ARGS + [f"--user-data-dir={self.profile}"] + list(extra_args)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"} if logs else {},
            "pageLoadStrategy": "none",
            "timeouts": {"script": 300000, "pageLoad": 300000},
        }}}
        r = self._req("POST", "/session", caps)
        self.sid = r["value"]["sessionId"]
        self.caps = r["value"]["capabilities"]

    def _req(self, method, path, body=None, timeout=600):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"webdriver {method} {path}: {e.code} {e.read()[:500]!r}")

    def cmd(self, method, path, body=None, timeout=600):
        return self._req(method, f"/session/{self.sid}{path}", body, timeout)["value"]

    def get(self, url):
        # With pageLoadStrategy "none" this returns at once, so that the callers' own probes,
        # not WebDriver's idea of "loaded", decide when the page is ready.
        return self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.cmd("POST", "/execute/async", {"script": script, "args": list(args)})

    def cdp(self, cmd, params=None):
        return self.cmd("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params or {}})

    def logs(self):
        try:
            return self.cmd("POST", "/se/log", {"type": "browser"})
        except Exception as e:
            return [{"level": "?", "message": f"(could not read logs: {e})"}]

    def screenshot(self, path):
        png = self.cmd("GET", "/screenshot")
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))

    def renderer_pids(self):
        """Chromium renderer processes of this browser (found by its own profile directory)."""
        out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        return [int(l.split()[0]) for l in out.splitlines()
                if self.profile in l and "--type=renderer" in l]

    def quit(self):
        try:
            self._req("DELETE", f"/session/{self.sid}", timeout=30)
        except Exception:
            pass
        try:
            os.killpg(self.driver.pid, 9)
        except Exception:
            pass
        self.driver.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
