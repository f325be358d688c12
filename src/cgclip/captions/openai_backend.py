"""Captioning through an OpenAI-compatible chat-completions endpoint (vLLM, Ollama, LM Studio, a hosted API).

Images go as base64 data URLs next to the prompt in one user message. Requests run on a bounded thread pool; each
has a timeout and is retried with exponential backoff (with jitter) on connection errors, timeouts, HTTP 408/409/429/5xx
and malformed or empty replies, honouring ``Retry-After``. An item whose retries run out comes back as a failed
:class:`~cgclip.captions.mllm.GenerationResult`; a rejected API key or an unknown model/endpoint is *fatal* (the job
stops instead of failing every item). Only the standard library is used (``urllib``).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import random
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from cgclip.captions.mllm import GenerationResult, GenerationTask, clean_reply

logger = logging.getLogger(__name__)

_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".gif": "image/gif"}


@dataclass
class OpenAIConfig:
    """Endpoint settings. ``base_url`` like ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended)."""

    base_url: str
    model: str
    api_key: str | None = None
    concurrency: int = 8
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    max_tokens: int = 160
    temperature: float = 0.2
    extra_body: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Permanent(Exception):
    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


def chat_url(base_url: str) -> str:
    """The chat-completions URL of a base URL (``/v1`` added when the URL has no path)."""
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if urllib.parse.urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url + "/chat/completions"


def image_data_url(path: str | Path) -> str:
    """The image file as a ``data:`` URL (JPEG/PNG/WebP/GIF as they are; other formats re-encoded as PNG)."""
    path = Path(path)
    mime = _MIME.get(path.suffix.lower())
    data = path.read_bytes()
    if mime is None:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="PNG")
        data, mime = buf.getvalue(), "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def reply_text(body: bytes) -> str:
    """The text of a chat-completions reply; raises :class:`_Retryable` if malformed or empty."""
    try:
        payload = json.loads(body.decode("utf-8"))
        content = payload["choices"][0]["message"]["content"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise _Retryable(f"malformed reply ({type(exc).__name__}: {str(exc)[:80]})") from exc
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    text = clean_reply(content)
    if not text:
        raise _Retryable("empty reply")
    return text


class OpenAIBackend:
    """An OpenAI-compatible chat-completions client with bounded concurrency, timeouts, retries and backoff."""

    def __init__(self, config: OpenAIConfig) -> None:
        self.config = config
        self.url = chat_url(config.base_url)
        self.model_name = config.model
        self._stop = threading.Event()
        self._rng = random.Random(config.seed)
        self._rng_lock = threading.Lock()

    def _payload(self, task: GenerationTask) -> bytes:
        if task.image is None:
            content: Any = task.prompt
        else:
            content = [
                {"type": "text", "text": task.prompt},
                {"type": "image_url", "image_url": {"url": image_data_url(task.image)}},
            ]
        body = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
            **self.config.extra_body,
        }
        return json.dumps(body).encode("utf-8")

    def request_once(self, payload: bytes) -> str:
        """POST one request; return the reply text or raise :class:`_Retryable` / :class:`_Permanent`."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            code, detail = exc.code, exc.read()[:200].decode("utf-8", "replace").strip()
            retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            message = f"HTTP {code} from {self.url}" + (f": {detail}" if detail else "")
            if code in (408, 409, 425, 429) or code >= 500:
                raise _Retryable(message, retry_after) from exc
            if code in (401, 403):
                raise _Permanent(
                    f"{message} (the endpoint rejected the API key; pass it with --api-key-env)", fatal=True
                ) from exc
            if code == 404:
                raise _Permanent(f"{message} (check the endpoint URL and the model name)", fatal=True) from exc
            raise _Permanent(message) from exc
        except TimeoutError as exc:
            raise _Retryable(f"timeout after {self.config.timeout:g}s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise _Retryable(f"timeout after {self.config.timeout:g}s") from exc
            raise _Retryable(f"cannot reach {self.url} ({exc.reason})") from exc
        except (ConnectionError, OSError) as exc:
            raise _Retryable(f"connection error ({type(exc).__name__}: {exc})") from exc
        return reply_text(body)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.config.max_retry_after)
        with self._rng_lock:
            jitter = 0.5 + 0.5 * self._rng.random()
        return min(self.config.max_backoff, self.config.backoff * (2**attempt)) * jitter

    def run_task(self, task: GenerationTask) -> GenerationResult:
        """Run one task with retries; always returns a result."""
        try:
            payload = self._payload(task)
        except (OSError, ValueError) as exc:
            return GenerationResult(task.key, error=f"cannot read image {task.image} ({exc})", attempts=0)
        last = "not attempted"
        unreachable = False
        for attempt in range(self.config.retries + 1):
            if self._stop.is_set():
                return GenerationResult(task.key, error="stopped before completion", attempts=attempt)
            try:
                return GenerationResult(task.key, text=self.request_once(payload), attempts=attempt + 1)
            except _Permanent as exc:
                return GenerationResult(task.key, error=str(exc), attempts=attempt + 1, fatal=exc.fatal)
            except _Retryable as exc:
                last = str(exc)
                unreachable = last.startswith("cannot reach")
                if attempt < self.config.retries:
                    delay = self._delay(attempt, exc.retry_after)
                    logger.debug("%s: %s; retrying in %.2fs", task.key, last, delay)
                    self._stop.wait(delay)
            except Exception as exc:  # noqa: BLE001 - one item's surprise must not kill the job
                logger.exception("unexpected error for %s", task.key)
                return GenerationResult(task.key, error=f"{type(exc).__name__}: {exc}", attempts=attempt + 1)
        return GenerationResult(task.key, error=last, attempts=self.config.retries + 1, fatal=unreachable)

    def generate(self, tasks: Iterable[GenerationTask]) -> Iterator[GenerationResult]:
        """Yield one result per task as they complete, keeping at most ``2 × concurrency`` requests queued."""
        self._stop.clear()
        workers = max(1, self.config.concurrency)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cgclip-openai")
        pending: set[Future[GenerationResult]] = set()
        try:
            for task in tasks:
                pending.add(pool.submit(self.run_task, task))
                if len(pending) >= 2 * workers:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        yield fut.result()
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
        finally:
            self._stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
