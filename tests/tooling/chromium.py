"""Headless Chromium (Debian's `chromium`, installed by scripts/install_chromium.sh) driven over the DevTools protocol.

    with Chromium(tmp_path / "profile").start() as browser:
        page = browser.new_page()
        timing = page.navigate("file:///.../report.html")      # waits for the load event
        title = page.evaluate("document.title")
        page.screenshot(tmp_path / "page.png")

Started with --headless --no-sandbox and everything that talks to the network in the background off
(--disable-background-networking, --disable-component-update, --disable-sync, ...), a fresh --user-data-dir, and
--remote-debugging-port=0: Chromium picks a free loopback port and writes it into DevToolsActivePort in the profile.
The protocol goes over a websocket (the PyPI package websocket-client).
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

BINARIES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


class ChromiumError(RuntimeError):
    """Chromium could not be found or started, or a DevTools call failed (the message says which)."""


def find_chromium() -> str | None:
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    """One tab, over its DevTools websocket."""

    def __init__(self, ws_url: str, timeout_s: float = 60.0) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=timeout_s, suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result; events that arrive meanwhile are kept in `events`."""
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise ChromiumError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_event(self, method: str, timeout_s: float = 60.0) -> dict[str, Any]:
        for i, e in enumerate(self.events):
            if e["method"] == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("method") == method:
                return message
            if "method" in message:
                self.events.append(message)
        raise ChromiumError(f"no {method} within {timeout_s:g} s")

    def navigate(self, url: str, timeout_s: float = 60.0) -> dict[str, float]:
        """Open `url` and wait for its load event. Returns the page's navigation timing (ms from navigation start:
        domContentLoaded, load), read from the Navigation Timing API."""
        self.send("Page.enable")
        self.events.clear()
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise ChromiumError(f"navigate to {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired", timeout_s)
        return self.evaluate(
            "(() => { const n = performance.getEntriesByType('navigation')[0];"
            " return {domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd || n.loadEventStart,"
            " transferSize: n.transferSize, decodedBodySize: n.decodedBodySize}; })()"
        )

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise ChromiumError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def fonts_for(self, selector: str) -> list[dict[str, Any]]:
        """The platform fonts that rendered the text of the first element matching `selector`."""
        self.send("DOM.enable")
        self.send("CSS.enable")
        root = self.send("DOM.getDocument", depth=-1)["root"]["nodeId"]
        node = self.send("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        if not node:
            raise ChromiumError(f"no element matches {selector!r}")
        return self.send("CSS.getPlatformFontsForNode", nodeId=node)["fonts"]

    def screenshot(self, path: Path, width: int = 1200) -> Path:
        """A PNG of the whole page (not just the viewport) at `width` CSS pixels."""
        height = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.ws.close()


class Chromium:
    """A headless Chromium process with a profile of its own."""

    def __init__(self, profile_dir: Path, binary: str | None = None) -> None:
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise ChromiumError(f"no Chromium found (looked for {', '.join(BINARIES)}); run scripts/install_chromium.sh")
        self.profile = Path(profile_dir)
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self, timeout_s: float = 60.0) -> "Chromium":
        if self.profile.exists():
            shutil.rmtree(self.profile)
        self.profile.mkdir(parents=True)
        log = (self.profile.parent / f"{self.profile.name}.log").open("w")
        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", "about:blank"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ChromiumError(f"{self.binary} exited with {self.proc.returncode} (see {log.name})")
            if port_file.exists() and port_file.read_text().strip():
                self.port = int(port_file.read_text().split()[0])
                return self
            time.sleep(0.05)
        self.stop()
        raise ChromiumError(f"{self.binary} did not open its DevTools port within {timeout_s:g} s (see {log.name})")

    def version(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/version", timeout=10) as r:
            return json.load(r)["Browser"]

    def new_page(self) -> Page:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as r:
            target = json.load(r)
        return Page(target["webSocketDebuggerUrl"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
