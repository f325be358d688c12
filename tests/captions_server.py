"""A loopback OpenAI-compatible chat-completions server with failure injection, for tests and benchmarks.

``CaptionServer(failure_rate=0.2)`` answers ``POST /v1/chat/completions`` on ``127.0.0.1`` (a free port). Each
request fails with probability ``failure_rate`` in one of the ways named in ``kinds``:

* ``"500"`` — HTTP 500; ``"429"`` — HTTP 429 with ``Retry-After: <retry_after>``;
* ``"timeout"`` — no answer for ``timeout_sleep`` seconds (longer than the client's timeout);
* ``"malformed"`` — HTTP 200 with a body that is not JSON; ``"empty"`` — HTTP 200 with empty content.

``script`` (a list of those names or ``"ok"``) fixes the outcome of the first requests in arrival order. Image requests
are answered with a caption naming the image's mean colour ("A person wearing a red top."), so same-coloured
identities collide; text-only requests get ``text_fn(prompt)`` (default: "Reworded: <last line of the prompt>").
"""

from __future__ import annotations

import base64
import io
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from PIL import Image

KINDS = ("500", "429", "timeout", "malformed", "empty")
COLOURS = {
    "red": (200, 30, 30),
    "green": (30, 160, 60),
    "blue": (30, 60, 200),
    "yellow": (220, 210, 40),
    "white": (235, 235, 235),
    "black": (20, 20, 20),
    "purple": (130, 40, 160),
    "orange": (240, 140, 30),
}


def colour_name(rgb: Sequence[float]) -> str:
    """The nearest of :data:`COLOURS` to an RGB triple."""
    return min(COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOURS[n], rgb)))


def caption_image(data: bytes) -> str:
    """The server's deterministic caption of an image: its mean colour."""
    with Image.open(io.BytesIO(data)) as img:
        mean = np.asarray(img.convert("RGB").resize((8, 8)), dtype=np.float64).reshape(-1, 3).mean(axis=0)
    return f"A person wearing a {colour_name(mean)} top."


def default_text_fn(prompt: str) -> str:
    """Answer to a text-only request: the prompt's last non-empty line, reworded."""
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    return f"Reworded: {lines[-1] if lines else ''}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops connections under client concurrency


class CaptionServer:
    """The test server; use as a context manager or call :meth:`start` / :meth:`stop`. ``url`` is the base URL."""

    def __init__(
        self,
        failure_rate: float = 0.0,
        kinds: Sequence[str] = KINDS,
        seed: int = 0,
        retry_after: float = 1,
        timeout_sleep: float = 1.0,
        script: Sequence[str] = (),
        text_fn: Callable[[str], str] = default_text_fn,
        api_key: str | None = None,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown failure kinds {sorted(unknown)}; use {KINDS}")
        self.failure_rate, self.kinds, self.retry_after = failure_rate, tuple(kinds), retry_after
        self.timeout_sleep, self.text_fn, self.api_key = timeout_sleep, text_fn, api_key
        self.script = list(script)
        self.stats: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321/v1``."""
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def outcome(self) -> str:
        """The outcome of the next request: a scripted one, else a random failure kind or ``"ok"``."""
        with self._lock:
            if self.script:
                return self.script.pop(0)
            if self.kinds and self._rng.random() < self.failure_rate:
                return self._rng.choice(self.kinds)
            return "ok"

    def answer(self, body: dict[str, Any]) -> str:
        """The caption for a request body (raises ValueError on a malformed request)."""
        if not body.get("model"):
            raise ValueError("no model")
        content = body["messages"][-1]["content"]
        if isinstance(content, str):
            return self.text_fn(content)
        prompt, image = "", None
        for part in content:
            if part.get("type") == "text":
                prompt += part["text"]
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"]
                if not url.startswith("data:image/") or ";base64," not in url:
                    raise ValueError("image is not a base64 data URL")
                image = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
        return caption_image(image) if image is not None else self.text_fn(prompt)

    def start(self) -> CaptionServer:
        """Start serving on a free loopback port in a background thread."""
        server_ref = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, code: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, b'{"error": "not found"}')
                if server_ref.api_key and self.headers.get("Authorization") != f"Bearer {server_ref.api_key}":
                    return self._send(401, b'{"error": "bad key"}')
                try:
                    body = json.loads(raw)
                    text = server_ref.answer(body)
                except (ValueError, KeyError, TypeError, IndexError) as exc:
                    return self._send(400, json.dumps({"error": str(exc)}).encode())
                kind = server_ref.outcome()
                with server_ref._lock:
                    server_ref.stats[kind] += 1
                    server_ref.requests.append({"kind": kind, "model": body.get("model")})
                if kind == "500":
                    return self._send(500, b'{"error": "internal error"}')
                if kind == "429":
                    return self._send(429, b'{"error": "rate limited"}', {"Retry-After": f"{server_ref.retry_after:g}"})
                if kind == "timeout":
                    time.sleep(server_ref.timeout_sleep)
                if kind == "malformed":
                    return self._send(200, b'{"choices": [{"message": ')
                reply = {
                    "id": "cmpl-test",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "" if kind == "empty" else text},
                        }
                    ],
                }
                self._send(200, json.dumps(reply).encode())

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> CaptionServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def make_image_folder(
    root: Any,
    identities: int = 10,
    tracklets: int = 2,
    frames: int = 5,
    seed: int = 0,
    size: tuple[int, int] = (16, 32),
) -> Any:
    """Write ``root/<identity>/<tracklet>/<frame>.jpg`` crops, one solid named colour per identity (so identities
    with the same colour get the same caption from :class:`CaptionServer`); returns ``root``."""
    from pathlib import Path

    root = Path(root)
    names = list(COLOURS)
    rng = random.Random(seed)
    for i in range(identities):
        colour = COLOURS[names[rng.randrange(len(names))]]
        for t in range(tracklets):
            folder = root / f"id{i:04d}" / f"t{t}"
            folder.mkdir(parents=True, exist_ok=True)
            for f in range(frames):
                Image.new("RGB", size, colour).save(folder / f"{f:04d}.jpg", quality=95)
    return root
