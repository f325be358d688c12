"""OpenAI-compatible back-end against a loopback server that injects failures: every item ends as exactly one caption
or one recorded failure, a rerun completes the rest, nothing is duplicated or lost."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter

import pytest

from captions_server import CaptionServer, make_image_folder
from cgclip.captions.augment import augment_captions, llm_paraphrase, translate_attributes
from cgclip.captions.mllm import GenerationTask, caption_frames, frames_from_folder
from cgclip.captions.openai_backend import OpenAIBackend, OpenAIConfig, chat_url, parse_retry_after
from cgclip.captions.store import CaptionRecord, CaptionStore
from cgclip.cli import main
from cgclip.data.identity_table import IdentityRecord
from cgclip.errors import CgclipError


def backend(url: str, **kw) -> OpenAIBackend:
    opts = dict(concurrency=4, timeout=0.4, retries=0, backoff=0.01, max_backoff=0.05)
    opts.update(kw)
    return OpenAIBackend(OpenAIConfig(url, "test-vlm", **opts))


def check_accounting(store: CaptionStore, items) -> tuple[set[str], set[str]]:
    captioned = [r.frame for r in store.captions if r.source == "mllm"]
    failed = [f.item for f in store.failures]
    assert len(captioned) == len(set(captioned)) and len(failed) == len(set(failed))
    assert set(captioned).isdisjoint(failed)
    assert set(captioned) | set(failed) == {it.frame for it in items}
    return set(captioned), set(failed)


def test_failures_are_recorded_once_and_rerun_completes(tmp_path):
    items = frames_from_folder(make_image_folder(tmp_path / "img", identities=8, tracklets=2, frames=4), None)
    assert len(items) == 64
    path = tmp_path / "caps.jsonl"
    with CaptionServer(failure_rate=0.5, seed=3, retry_after=0.05, timeout_sleep=0.8) as server:
        s1 = caption_frames(items, backend(server.url), CaptionStore(path))
        assert set(server.stats) == {"ok", "500", "429", "timeout", "malformed", "empty"}
        assert s1.captioned + s1.failed == 64 and s1.failed > 10
        captioned, failed = check_accounting(CaptionStore(path), items)
        assert len(captioned) == s1.captioned and len(failed) == s1.failed
        errors = Counter(f.error.split(" ")[0] for f in CaptionStore(path).failures)
        assert {"HTTP", "timeout", "malformed", "empty"} <= set(errors)

        server.failure_rate = 0.0
        s2 = caption_frames(items, backend(server.url), CaptionStore(path))
        assert (s2.already_done, s2.captioned, s2.failed) == (s1.captioned, s1.failed, 0)
        store = CaptionStore(path)
        captioned, failed = check_accounting(store, items)
        assert len(captioned) == 64 and not failed and not store.failures_path.exists()
        s3 = caption_frames(items, backend(server.url), store)
        assert (s3.already_done, s3.captioned) == (64, 0)
    for r in store.captions:
        assert r.text.startswith("A person wearing a") and r.model == "test-vlm"
        assert r.prompt_id == "paper-fewshot-v1" and r.tracklet and r.identity == r.frame.split("/")[0]


def test_retries_with_backoff_then_success(tmp_path):
    items = frames_from_folder(make_image_folder(tmp_path / "img", identities=1, tracklets=1, frames=1), None)
    with CaptionServer(script=["500", "malformed", "empty", "ok"]) as server:
        s = caption_frames(items, backend(server.url, retries=3, concurrency=1), CaptionStore(tmp_path / "c.jsonl"))
        assert (s.captioned, s.failed) == (1, 0) and sum(server.stats.values()) == 4
    with CaptionServer(script=["500", "500"]) as server:
        s = caption_frames(items, backend(server.url, retries=1), CaptionStore(tmp_path / "d.jsonl"))
        assert (s.captioned, s.failed) == (0, 1)
        [failure] = CaptionStore(tmp_path / "d.jsonl").failures
        assert failure.attempts == 2 and failure.error.startswith("HTTP 500")


def test_429_retry_after_is_honoured_and_timeouts_retried(tmp_path):
    img = make_image_folder(tmp_path / "img", identities=1, tracklets=1, frames=1)
    task = GenerationTask("k", "describe", image=str(next(img.rglob("*.jpg"))))
    with CaptionServer(script=["429", "ok"], retry_after=1) as server:
        start = time.monotonic()
        [res] = list(backend(server.url, retries=2).generate([task]))
        assert res.text and res.attempts == 2 and time.monotonic() - start >= 0.95
    with CaptionServer(script=["timeout", "ok"], timeout_sleep=1.0) as server:
        [res] = list(backend(server.url, retries=1, timeout=0.3).generate([task]))
        assert res.text and res.attempts == 2


def test_image_goes_as_data_url_and_is_read_by_server(tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 32), (200, 30, 30)).save(tmp_path / "red.png")
    with CaptionServer() as server:
        [res] = list(backend(server.url).generate([GenerationTask("r", "describe", str(tmp_path / "red.png"))]))
    assert res.text == "A person wearing a red top."
    [res] = list(backend("http://127.0.0.1:9").generate([GenerationTask("m", "x", str(tmp_path / "nope.png"))]))
    assert "cannot read image" in res.error and not res.fatal


def test_bad_api_key_and_unreachable_server_stop_the_job(tmp_path):
    items = frames_from_folder(make_image_folder(tmp_path / "img", identities=2, tracklets=1, frames=3), None)
    with CaptionServer(api_key="secret") as server:
        with pytest.raises(CgclipError, match="API key"):
            caption_frames(items, backend(server.url), CaptionStore(tmp_path / "a.jsonl"))
        s = caption_frames(items, backend(server.url, api_key="secret"), CaptionStore(tmp_path / "a.jsonl"))
        assert s.captioned == 6
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(CgclipError, match="cannot reach"):
        caption_frames(items, backend(f"http://127.0.0.1:{port}/v1"), CaptionStore(tmp_path / "b.jsonl"))


def test_url_and_retry_after_parsing():
    assert chat_url("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert chat_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert chat_url("http://h/api/v1/chat/completions") == "http://h/api/v1/chat/completions"
    assert parse_retry_after("3") == 3.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_augment_paraphrase_and_translate_through_endpoint(tmp_path):
    store = CaptionStore(tmp_path / "c.jsonl")
    store.add(
        [
            CaptionRecord("a", "A man in red.", "mllm", frame="a/1.jpg", item="a/1.jpg"),
            CaptionRecord("b", "A woman in blue.", "mllm", frame="b/1.jpg", item="b/1.jpg"),
            CaptionRecord("b", "Note.", "manual"),
        ]
    )

    def reword(prompt: str) -> str:
        variant = "v2" if "variant number 2" in prompt else "v1"
        return f"Reworded {variant}: {prompt.splitlines()[-1]}"

    with CaptionServer(script=["500"], text_fn=reword) as server:
        s = augment_captions(store, backend(server.url, concurrency=1), per_caption=2)
        assert (s.captioned, s.failed) == (3, 1)
        s = augment_captions(CaptionStore(store.path), backend(server.url), per_caption=2)
        assert (s.already_done, s.captioned, s.failed) == (3, 1, 0)
    aug = [r for r in CaptionStore(store.path).captions if r.source == "augment"]
    assert len(aug) == 4 and {r.frame for r in aug} == {"a/1.jpg", "b/1.jpg"}
    assert "Reworded v2: Description: A woman in blue." in {r.text for r in aug}
    assert not CaptionStore(store.path).failures
    dup = CaptionStore(tmp_path / "dup.jsonl")
    dup.add([r for r in store.captions if r.source == "mllm"])
    with CaptionServer() as server:  # a model that says the same thing twice: the repeat is a failure, not a caption
        s = augment_captions(dup, backend(server.url), per_caption=3)
    assert (s.captioned, s.failed) == (2, 4)
    assert {f.error for f in CaptionStore(dup.path).failures} == {"duplicate of an existing caption"}

    def echo_or_drop(prompt: str) -> str:
        return "Someone anonymous." if "variant number 2" in prompt else "Seen: red jersey, number 23."

    with CaptionServer(text_fn=echo_or_drop) as server:
        s = llm_paraphrase(
            store, backend(server.url), {"p1": ("A man in a red jersey, number 23.", ["red jersey", "23"])}, n=3
        )
    assert (s.captioned, s.failed) == (1, 2)  # one kept; one dropped values; one duplicate text

    rows = [IdentityRecord("p1", "train", {"gender": "男性", "uniform": "赤いジャージ", "number": "23"})]
    table = {"男性": "man", "赤いジャージ": "red jersey"}
    with CaptionServer(text_fn=lambda p: table[p.splitlines()[-1]]) as server:
        out, failures = translate_attributes(rows, backend(server.url))
    assert out[0].attributes == {"gender": "man", "uniform": "red jersey", "number": "23"} and not failures


def test_cli_mllm_and_report_against_failing_server(tmp_path, capsys):
    img = make_image_folder(tmp_path / "img", identities=12, tracklets=2, frames=3, seed=1)
    out = tmp_path / "caps.jsonl"
    with CaptionServer(failure_rate=0.2, seed=0, retry_after=0.05, timeout_sleep=0.6) as server:
        args = [
            "caption",
            "mllm",
            "--images",
            str(img),
            "--frames",
            "2",
            "--out",
            str(out),
            "--endpoint",
            server.url,
            "--model",
            "m",
            "--retries",
            "1",
            "--timeout",
            "0.3",
            "--backoff",
            "0.01",
        ]
        first = main(args)
        second = main(args)
    text = capsys.readouterr().out
    assert first in (0, 1) and second == 0, text
    assert len(CaptionStore(out)) == 48
    assert main(["caption", "report", "--captions", str(out), "--out", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["colliding_identities"] and "ID text" in report["recommendation"]
    assert "recommendation:" in capsys.readouterr().out
