"""The one results schema: every file of retrieval metrics cgclip writes (``cgclip evaluate``, the split protocol,
the demo, the benchmarks) names :data:`RESULTS_SCHEMA` and :data:`UNIT` and keeps its metrics in that unit.

- Keys: :data:`METRICS` (``mAP``, ``rank1``, ``rank5``, ``rank10``, ``rank20``, ``mINP``, as
  :meth:`cgclip.eval.RankResult.as_dict` gives them) and a few derived ones (:data:`METRIC_KEYS`); wherever such a
  key appears in a file (top level, per world and model, per split, or as ``{"mean", "std"}``) its value is in the unit.
- Unit: fractions in [0, 1], what the evaluator (and torchreid's) returns. Percent is for display only, through
  :func:`percent`.
- Write with :func:`write_results` (or :func:`stamp` for a JSON-lines row); read with :func:`read_results`, which also
  reads the files written before the schema (the demo's summary in percent, everything else in fractions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cgclip.errors import ResultsError
from cgclip.io_utils import read_json, write_json

#: The schema name and version written into every results file.
RESULTS_SCHEMA = "cgclip.results/1"
#: The unit of every metric in a results file.
UNIT = "fraction"
#: What one whole (a perfect score) is in each unit a file may declare.
UNITS = {"fraction": 1.0, "percent": 100.0}
#: The headline metrics, in the evaluator's order.
METRICS = ("mAP", "rank1", "rank5", "rank10", "rank20", "mINP")
#: Every key whose value is a metric in the file's unit: the headline ones, the best validation mAP of a run and
#: the comparison benchmark's validation and last-epoch mAP.
METRIC_KEYS = METRICS + ("val_mAP", "mAP_last", "best_val_mAP")
#: Parts of a file that never hold metrics (a configuration or protocol key is never rescaled).
_NOT_METRICS = frozenset({"config", "protocol", "dataset", "settings", "timing"})


def percent(value: float) -> float:
    """A metric in :data:`UNIT` as a percentage, for display (tables, log lines) only."""
    return value * UNITS["percent"] / UNITS[UNIT]


def stamp(results: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``results`` (metrics already in :data:`UNIT`) with ``schema`` and ``unit`` as its first fields."""
    rest = {k: v for k, v in results.items() if k not in ("schema", "unit")}
    return {"schema": RESULTS_SCHEMA, "unit": UNIT, **rest}


def write_results(path: str | Path, results: dict[str, Any]) -> dict[str, Any]:
    """Write ``results`` (metrics in :data:`UNIT`) as a results file, atomically; returns the stamped dict written."""
    doc = stamp(results)
    write_json(path, doc)
    return doc


def read_results(
    source: str | Path | dict[str, Any],
    *,
    legacy_unit: str | None = None,
    path: str | Path | None = None,
    line: int | None = None,
) -> dict[str, Any]:
    """A results file (or its already-parsed dict) in the schema, metrics in :data:`UNIT`, whichever code wrote it.

    A file with ``schema`` must name :data:`RESULTS_SCHEMA` and a known unit, or :class:`cgclip.errors.ResultsError`
    names it. A file from before the schema is read in ``legacy_unit`` when the caller knows its old files' unit (the
    comparison benchmark's rows were percent); otherwise the demo's summary (``results`` per world and model, with a
    note saying percent) is percent and everything else (``cgclip evaluate``, the split protocol's summary, the
    trainer's validation metrics) fractions. ``path``/``line`` name where a dict came from in errors.
    """
    if not isinstance(source, dict):
        path, source = source, read_json(source)
        if not isinstance(source, dict):
            raise ResultsError("not a results file (expected a JSON object)", path=path)
    unit = _declared_unit(source, path, line) if "schema" in source else legacy_unit or _legacy_unit(source)
    if unit not in UNITS:
        raise ResultsError(f"unknown metrics unit {unit!r}; expected one of {', '.join(UNITS)}", path=path, line=line)
    return stamp(_rescale(source, UNITS[UNIT], UNITS[unit]))


def read_results_lines(path: str | Path, *, legacy_unit: str | None = None) -> list[dict[str, Any]]:
    """Every row of a JSON-lines results file through :func:`read_results` (none when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        read_results(json.loads(text), legacy_unit=legacy_unit, path=path, line=n)
        for n, text in enumerate(lines, start=1)
        if text.strip()
    ]


def to_percent(results: dict[str, Any]) -> dict[str, Any]:
    """A display copy of ``results`` (in :data:`UNIT`) with every metric in percent, for tables computed from it."""
    out = _rescale(results, UNITS["percent"], UNITS[UNIT])
    return {**out, "unit": "percent"} if "unit" in out else out


def _declared_unit(data: dict[str, Any], path: str | Path | None, line: int | None) -> str:
    """The unit a schema-stamped file declares, after checking its schema version."""
    if data["schema"] != RESULTS_SCHEMA:
        raise ResultsError(
            f"unknown results schema {data['schema']!r}; this cgclip reads {RESULTS_SCHEMA} (a newer cgclip wrote it?)",
            path=path,
            line=line,
        )
    return data.get("unit", "")


def _legacy_unit(data: dict[str, Any]) -> str:
    """The unit of a file written before the schema: percent for the demo's summary, fractions for the rest."""
    demo_summary = isinstance(data.get("results"), dict) and "percent" in str(data.get("note", ""))
    return "percent" if demo_summary else "fraction"


def _rescale(data: dict[str, Any], to: float, frm: float) -> dict[str, Any]:
    """A copy of ``data`` with every metric (at any depth) multiplied by ``to / frm``."""
    if to == frm:
        return dict(data)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in METRIC_KEYS:
            out[key] = _scale(value, to, frm)
        elif isinstance(value, dict) and key not in _NOT_METRICS:
            out[key] = _rescale(value, to, frm)
        else:
            out[key] = value
    return out


def _scale(value: Any, to: float, frm: float) -> Any:
    """A metric value (a number, or ``{"mean", "std"}``) multiplied by ``to / frm``; anything else unchanged."""
    if isinstance(value, dict):
        return {k: _scale(v, to, frm) for k, v in value.items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value * to / frm
    return value


__all__ = [
    "METRICS",
    "METRIC_KEYS",
    "RESULTS_SCHEMA",
    "UNIT",
    "UNITS",
    "percent",
    "read_results",
    "read_results_lines",
    "stamp",
    "to_percent",
    "write_results",
]
