"""Caption store: JSONL round trip, dedupe, journal replay, failures, validation; load_identity_captions; ID text."""

from __future__ import annotations

import json

import pytest

from cgclip.captions import CaptionRecord, CaptionStore, FailureRecord, apply_id_text, load_identity_captions
from cgclip.errors import CgclipError

TABLE = """identity_id,split,scene,gender,uniform,number,hair,shoes,socks,build,accessories,others
p1,train,soccer,man,red jersey with white shorts,23,short black hair,white sneakers,long red socks,tall and slim,\
a black headband,
p2,train,basketball,woman,blue jersey with blue shorts,7,long brown hair,black shoes,,,,
p3,val,hip-hop,man,black hoodie,,,,,stocky,,tattoo on the left arm
"""


def rec(identity: str, text: str, **kw) -> CaptionRecord:
    return CaptionRecord(identity=identity, text=text, source=kw.pop("source", "manual"), **kw)


def test_roundtrip_dedupe_and_append_never_loses(tmp_path):
    path = tmp_path / "caps.jsonl"
    store = CaptionStore(path)
    assert store.add([rec("a", "A man."), rec("a", "A man.", model="other"), rec("b", "A woman.")]) == 2
    again = CaptionStore(path)
    assert again.add([rec("a", "A man."), rec("a", "A tall man.", frame="a/1.jpg", tracklet="a/0.jpg")]) == 1
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [d["text"] for d in lines] == ["A man.", "A woman.", "A tall man."]
    assert {"identity", "tracklet", "frame", "text", "source", "model", "prompt_id", "time"} <= set(lines[0])
    assert CaptionStore(path).by_identity() == {"a": ["A man.", "A tall man."], "b": ["A woman."]}
    assert CaptionStore(path).by_identity(sources=["mllm"]) == {}
    assert not list(tmp_path.glob(".*tmp"))


def test_journal_replay_after_crash_and_truncated_line(tmp_path):
    path = tmp_path / "caps.jsonl"
    CaptionStore(path).add([rec("a", "old caption")])
    store = CaptionStore(path)
    store.open_journal()
    for i in range(3):
        store.journal_caption(
            rec("b", f"frame caption {i}", source="mllm", frame=f"b/{i}.jpg", item=f"b/{i}.jpg", prompt_id="p")
        )
    store.journal_failure(FailureRecord(task="mllm", item="b/9.jpg", identity="b", error="HTTP 500", prompt_id="p"))
    store._journal.flush()
    with open(store.journal_path, "a") as fh:  # a write cut short by a kill
        fh.write('{"kind": "caption", "record": {"identity": "b", "te')
    reloaded = CaptionStore(path)  # the crashed job never compacted
    assert len(reloaded) == 4
    assert reloaded.done_items("mllm", "p") == {"b/0.jpg", "b/1.jpg", "b/2.jpg"}
    assert [f.item for f in reloaded.failures] == ["b/9.jpg"]
    reloaded.compact()
    assert not reloaded.journal_path.exists()
    assert len(CaptionStore(path)) == 4 and len(CaptionStore(path).failures) == 1


def test_caption_clears_failure_of_same_item(tmp_path):
    store = CaptionStore(tmp_path / "caps.jsonl")
    store.journal_failure(FailureRecord(task="mllm", item="x.jpg", identity="a", error="timeout", prompt_id="p"))
    store.journal_failure(FailureRecord(task="mllm", item="x.jpg", identity="a", error="HTTP 500", prompt_id="p"))
    assert [f.error for f in store.failures] == ["HTTP 500"]
    store.journal_caption(rec("a", "A man.", source="mllm", frame="x.jpg", item="x.jpg", prompt_id="p"))
    store.compact()
    fresh = CaptionStore(tmp_path / "caps.jsonl")
    assert fresh.failures == [] and not fresh.failures_path.exists()
    fresh.journal_failure(FailureRecord(task="mllm", item="x.jpg", identity="a", error="late", prompt_id="p"))
    assert fresh.failures == []  # an item that has a caption cannot fail again


@pytest.mark.parametrize(
    "line,needle",
    [
        ('{"identity": "a", "text": "", "source": "manual"}', "empty 'text'"),
        ('{"identity": "a", "text": "x", "source": "gpt"}', "source 'gpt'"),
        ('{"text": "x", "source": "manual"}', "no 'identity'"),
        ("not json", "not valid JSON"),
    ],
)
def test_malformed_store_names_file_and_line(tmp_path, line, needle):
    path = tmp_path / "caps.jsonl"
    path.write_text('{"identity": "a", "text": "ok", "source": "manual"}\n' + line + "\n")
    with pytest.raises(CgclipError) as err:
        CaptionStore(path)
    assert "caps.jsonl:2:" in str(err.value) and needle in str(err.value)


def test_validate_against_dataset(tmp_path):
    store = CaptionStore(tmp_path / "c.jsonl")
    store.add([rec("a", "x"), rec("zz", "y")])
    assert store.validate(["a", "b"]) == {"unknown": ["zz"], "missing": ["b"]}


def test_load_identity_captions_from_store(tmp_path):
    path = tmp_path / "caps.jsonl"
    CaptionStore(path).add(
        [
            rec("a", "one"),
            rec("b", "two", frame="b/1.jpg", tracklet="b/0.jpg", source="mllm"),
            rec("b", "two", frame="b/2.jpg", tracklet="b/0.jpg", source="mllm"),
            rec("b", "three"),
        ]
    )
    assert load_identity_captions(path, ["b", "a"]) == [["two", "three"], ["one"]]
    with pytest.raises(CgclipError, match=r"2 of 3 identities have no captions \(e\.g\. c, d\)"):
        load_identity_captions(path, ["a", "c", "d"])
    assert load_identity_captions(path, ["a", "c"], allow_missing=True) == [["one"], []]
    with pytest.raises(CgclipError, match="caption store not found"):
        load_identity_captions(tmp_path / "nope.jsonl", ["a"])


def test_load_identity_captions_from_table_and_folder(tmp_path):
    (tmp_path / "identities.csv").write_text(TABLE)
    from_table = load_identity_captions(tmp_path / "identities.csv", ["p2", "p1"])
    from_folder = load_identity_captions(tmp_path, ["p2", "p1"])
    assert from_table == from_folder
    assert [len(c) for c in from_table] == [10, 10]
    assert all("23" in c and "short black hair" in c for c in from_table[1])
    with pytest.raises(CgclipError, match="no identities.csv"):
        load_identity_captions(tmp_path / "sub" if (tmp_path / "sub").mkdir() is None else tmp_path, ["p1"])


def test_apply_id_text():
    assert apply_id_text(["A man in red", "A tall man."], "0042") == [
        "A man in red. The person's ID is 0042.",
        "A tall man. The person's ID is 0042.",
    ]
    assert apply_id_text([], "p1") == ["The person's ID is p1."]
    once = apply_id_text(["A man."], "p1")
    assert apply_id_text(once, "p1") == once


def test_select_frames_every_or_k_per_tracklet_and_prompt_ids(tmp_path, monkeypatch):
    from cgclip.captions.mllm import PAPER_PROMPT_ID, load_prompt, select_frames
    from cgclip.data.tracklet import Tracklet

    root = tmp_path / "ds"
    t1 = Tracklet(tuple(str(root / "crops" / "a" / f"{i:03d}.jpg") for i in range(10)), 0, 0, identity="a")
    t2 = Tracklet(("crops/b/000.jpg", "crops/b/001.jpg"), 1, 1, identity="b")
    every = select_frames([t1, t2, t1], None, root)
    assert len(every) == 12 and every[0].frame == "crops/a/000.jpg" and every[0].path == t1.frames[0]
    assert every[-1].path == str(root / "crops/b/001.jpg") and every[-1].tracklet == "crops/b/000.jpg"
    three = select_frames([t1, t2], 3, root)
    assert [it.frame for it in three] == [
        "crops/a/000.jpg",
        "crops/a/004.jpg",
        "crops/a/009.jpg",
        "crops/b/000.jpg",
        "crops/b/001.jpg",
    ]
    assert {it.identity for it in three} == {"a", "b"}
    monkeypatch.chdir(tmp_path)  # a dataset root spelled relative to the working directory gives the same keys
    relative = Tracklet(tuple(f"ds/crops/a/{i:03d}.jpg" for i in range(10)), 0, 0, identity="a")
    assert [it.frame for it in select_frames([relative], 3, "ds")] == [it.frame for it in three[:3]]
    assert load_prompt().id == PAPER_PROMPT_ID and "belongings" in load_prompt().text
    (tmp_path / "p.txt").write_text("Describe the player.\n")
    custom = load_prompt(tmp_path / "p.txt")
    assert custom.id.startswith("custom-") and custom.id == load_prompt(tmp_path / "p.txt").id
    with pytest.raises(CgclipError, match="prompt file not found"):
        load_prompt(tmp_path / "missing.txt")
