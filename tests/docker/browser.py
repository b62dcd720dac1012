"""A headless Chromium driven over W3C WebDriver (plain HTTP to chromedriver on loopback).

Standard library only: chromedriver listens on 127.0.0.1 at a free port, each call is one JSON
request to it. `Browser.find()` says why when the browser or its driver is missing, so a suite
can skip. The browser runs with a throwaway profile and is stopped (with its driver) on close().
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


class WebDriverError(RuntimeError):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    @staticmethod
    def find():
        """(chromium, chromedriver) paths, or None and what is missing."""
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        driver = shutil.which("chromedriver")
        missing = [n for n, p in (("chromium", browser), ("chromedriver", driver)) if not p]
        return ((browser, driver), None) if not missing else (None, " and ".join(missing))

    def __init__(self, width=1400, height=1000):
        (browser, driver), missing = self.find()
        if missing:
            raise WebDriverError(f"{missing} not installed")
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="raft-browser-")
        self.proc = subprocess.Popen([driver, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = None
        try:
            self._wait_ready()
            caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         f"--window-size={width},{height}", f"--user-data-dir={self.profile}",
                         "--no-first-run", "--disable-extensions", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync"]}}}}
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except (OSError, WebDriverError):
                pass
            time.sleep(0.1)
        raise WebDriverError("chromedriver did not become ready")

    def _call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise WebDriverError(f"{method} {path}: {e.code} {e.read()[:300]!r}") from None

    def _s(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    # ---- what a test needs ---------------------------------------------------------------------
    def get(self, url):
        self._s("POST", "/url", {"url": url})

    def js(self, script, *args):
        """Run `script` (a function body; `arguments` holds args) and return its value."""
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def css(self, selector):
        found = self._s("POST", "/element", {"using": "css selector", "value": selector})
        return found[ELEMENT]

    def click(self, selector):
        self._s("POST", f"/element/{self.css(selector)}/click", {})

    def screenshot(self, path):
        import base64
        png = base64.b64decode(self._s("GET", "/screenshot"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)

    def close(self):
        if self.session:
            try:
                self._s("DELETE", "")
            except (OSError, WebDriverError):
                pass
            self.session = None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
