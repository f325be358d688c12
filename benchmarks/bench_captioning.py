"""Caption N generated frames against a loopback OpenAI-compatible server that fails a share of requests.

Starts ``tests/captions_server.CaptionServer`` (failures: HTTP 500, 429 + Retry-After, timeouts, malformed JSON,
empty content), writes a folder of solid-colour crops (``<identity>/<tracklet>/<frame>.jpg``), captions every frame
with :class:`cgclip.captions.openai_backend.OpenAIBackend` into a caption store, then reruns the same job (which
retries only what failed), and prints captioned/failed counts and rates for both runs plus the caption report's
collision summary. Nothing leaves 127.0.0.1.

    python benchmarks/bench_captioning.py --frames 300 --failure-rate 0.2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from captions_server import CaptionServer, make_image_folder  # noqa: E402
from cgclip.captions.mllm import caption_frames, frames_from_folder  # noqa: E402
from cgclip.captions.openai_backend import OpenAIBackend, OpenAIConfig  # noqa: E402
from cgclip.captions.report import caption_report  # noqa: E402
from cgclip.captions.store import CaptionStore  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=300, help="frames to caption (default 300)")
    ap.add_argument("--frames-per-tracklet", type=int, default=5)
    ap.add_argument("--tracklets", type=int, default=2, help="tracklets per identity")
    ap.add_argument("--failure-rate", type=float, default=0.2, help="share of requests that fail (default 0.2)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--retries", type=int, default=3, help="client retries per item (default 3)")
    ap.add_argument("--timeout", type=float, default=1.0, help="client timeout in seconds")
    ap.add_argument("--timeout-sleep", type=float, default=2.0, help="how long an injected timeout stalls")
    ap.add_argument("--retry-after", type=float, default=0.5, help="Retry-After of injected 429s (seconds)")
    ap.add_argument("--backoff", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, help="keep images and captions here (default: a temporary folder)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="cgclip-bench-") as tmp:
        work = args.workdir or Path(tmp)
        per_identity = args.tracklets * args.frames_per_tracklet
        identities = max(1, -(-args.frames // per_identity))
        img = make_image_folder(work / "images", identities, args.tracklets, args.frames_per_tracklet, args.seed)
        items = frames_from_folder(img)[: args.frames]
        store_path = work / "captions.jsonl"
        results = {}
        with CaptionServer(
            failure_rate=args.failure_rate,
            seed=args.seed,
            retry_after=args.retry_after,
            timeout_sleep=args.timeout_sleep,
        ) as server:
            config = OpenAIConfig(
                server.url,
                "bench-vlm",
                concurrency=args.concurrency,
                timeout=args.timeout,
                retries=args.retries,
                backoff=args.backoff,
                max_backoff=2.0,
            )
            for run in ("run 1", "rerun"):
                before = dict(server.stats)
                s = caption_frames(items, OpenAIBackend(config), CaptionStore(store_path))
                requests = {k: v - before.get(k, 0) for k, v in server.stats.items() if v - before.get(k, 0)}
                total_done = len([r for r in CaptionStore(store_path).captions if r.source == "mllm"])
                results[run] = {**s.as_dict(), "captioned_total": total_done, "requests": requests}
                print(
                    f"{run}: {s.captioned} captioned, {s.failed} failed, {s.already_done} already done of "
                    f"{s.requested} frames in {s.seconds:.2f} s ({s.rate:.1f} frames/s); store now holds "
                    f"{total_done}/{len(items)}; server requests {requests}"
                )
        report = caption_report(CaptionStore(store_path))
        print(
            f"report: {len(report['colliding_identities'])} of {report['num_identities']} identities collide in "
            f"{len(report['collision_groups'])} groups, e.g. {report['collision_groups'][:2]}"
        )
        print(f"recommendation: {report['recommendation']}")
        results["report"] = {
            k: report[k] for k in ("num_identities", "collision_fraction", "collision_groups", "recommendation")
        }
        print(json.dumps({k: v for k, v in results.items() if k != "report"}, indent=1))
        all_done = results["rerun"]["captioned_total"] == len(items)
        return 0 if all_done else 1


if __name__ == "__main__":
    raise SystemExit(main())
