"""A headless Chromium for tests, driven over the DevTools protocol on a pipe.

`--remote-debugging-pipe` makes Chromium read protocol commands from file
descriptor 3 and write replies to 4, as NUL-terminated JSON: no port, no
websocket library.

Example:

```python
with Chromium(tmp_path / "profile") as browser:
    page = browser.open("http://127.0.0.1:6006/#histogram_overlay")
    title = browser.evaluate(page, "document.title")
    browser.screenshot(page, tmp_path / "page.png")
```
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

EXECUTABLE = "chromium"  # Debian's package; `.ci/run` installs it when missing
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe")
REPLY_SECONDS = 60  # for one protocol command, on a busy machine
# Runs argv[3:] with descriptors argv[1] and argv[2] as 3 and 4. Both are
# copied first, so neither is overwritten before it is copied whatever their
# numbers; a copy may already be 3 or 4, where dup2 keeps it close-on-exec.
_ON_3_AND_4 = """import os, sys
commands, replies = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))
os.dup2(commands, 3)
os.dup2(replies, 4)
os.set_inheritable(3, True)
os.set_inheritable(4, True)
os.execv(sys.argv[3], sys.argv[3:])
"""
VIEWPORT = {"width": 1400, "height": 1050, "deviceScaleFactor": 1, "mobile": False}


class Chromium:
    """One headless Chromium process with a fresh profile in `profile_dir`."""

    def __init__(self, profile_dir: str | Path, log_path: str | Path | None = None):
        executable = shutil.which(EXECUTABLE)
        if executable is None:
            raise FileNotFoundError(f"{EXECUTABLE} is not installed: apt-get install -y chromium")
        Path(profile_dir).mkdir(parents=True, exist_ok=True)
        to_browser, self._commands = os.pipe()
        self._replies, from_browser = os.pipe()
        with open(log_path or os.devnull, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _ON_3_AND_4, str(to_browser), str(from_browser),
                 executable, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
                pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Sends one protocol command and returns its result (events are ignored)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + REPLY_SECONDS
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._replies], [], [], remaining)[0]:
                raise TimeoutError(f"no reply from Chromium within {REPLY_SECONDS} s")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise ConnectionError(f"Chromium exited with {self.process.wait()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> str:
        """Opens `url` in a new page of `VIEWPORT`'s size; returns the page's session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride", VIEWPORT, session)
        self.send("Page.navigate", {"url": url}, session)
        return session

    def evaluate(self, session: str, expression: str):
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, session: str, path: str | Path) -> Path:
        """Saves the page's viewport as a PNG."""
        data = self.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError, ConnectionError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for descriptor in (self._commands, self._replies):
            try:
                os.close(descriptor)
            except OSError:
                pass
