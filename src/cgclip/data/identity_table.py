"""The identity table (``identities.csv``) and the track mapping (``track_mapping.csv``).

* ``identities.csv`` — one row per identity: ``identity_id,split,`` then attribute columns (the standard ones are
  :data:`IDENTITY_COLUMNS`; empty cells and extra columns are allowed, extra columns are attributes too).
* ``track_mapping.csv`` — ``split,sequence,track_id,identity_id``: which MOT track (a track id of one sequence of one
  split folder) shows which identity. This is the manual cross-video matching of SportsVReID / DanceVReID.

:func:`resolve_identities` joins both with the tracks found in the MOT data: mapped tracks take their identity,
unmapped tracks become their own identity ``<split>/<sequence>/<track_id>``, and an identity mapped in two splits
(a train/val leak) is an error.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cgclip.errors import DataError
from cgclip.io_utils import atomic_write_text, read_text

log = logging.getLogger(__name__)

IDENTITY_COLUMNS = (
    "identity_id",
    "split",
    "scene",
    "gender",
    "uniform",
    "number",
    "hair",
    "shoes",
    "socks",
    "build",
    "accessories",
    "others",
)
MAPPING_COLUMNS = ("split", "sequence", "track_id", "identity_id")

TrackKey = tuple[str, str, int]
"""(split folder, sequence name, track id) of one MOT track."""


@dataclass(frozen=True)
class IdentityRecord:
    """One row of ``identities.csv``.

    Attributes:
        identity_id: the identity's name (unique in the table).
        split: the split the identity belongs to ("train", "val", ...; may be empty).
        attributes: every other column, in column order (empty cells are "").
        line: line of the row in its file (0 for generated rows).
    """

    identity_id: str
    split: str
    attributes: dict[str, str] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class MappingRow:
    """One row of ``track_mapping.csv``: track ``(split, sequence, track_id)`` shows ``identity_id``."""

    split: str
    sequence: str
    track_id: int
    identity_id: str
    line: int = 0

    @property
    def key(self) -> TrackKey:
        """The row's track key."""
        return (self.split, self.sequence, self.track_id)


def _read_csv(path: Path, required: Sequence[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Read a CSV with a header; returns (columns, [(line, row)]) and checks the required columns."""
    if not path.is_file():
        raise DataError(f"file not found; expected a CSV with header {','.join(required)}", path=path)
    with io.StringIO(read_text(path, "CSV table"), newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataError(f"empty file; expected a CSV with header {','.join(required)}", path=path, line=1)
        columns = [c.strip() for c in header]
        missing = [c for c in required if c not in columns]
        if missing or len(set(columns)) != len(columns) or any(not c for c in columns):
            raise DataError(
                f"header {','.join(columns)} lacks {','.join(missing) or 'unique non-empty names'}; "
                f"expected a header starting {','.join(required)}",
                path=path,
                line=1,
            )
        rows = []
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(columns):
                raise DataError(
                    f"row has {len(cells)} cells, the header {len(columns)}; quote cells that hold commas",
                    path=path,
                    line=reader.line_num,
                )
            rows.append((reader.line_num, {c: v.strip() for c, v in zip(columns, cells)}))
    return columns, rows


def read_identity_table(path: str | Path) -> list[IdentityRecord]:
    """Read ``identities.csv`` into records, in file order.

    Raises:
        DataError: missing file, no ``identity_id``/``split`` column, an empty or duplicate ``identity_id``
            (names the file and line).
    """
    path = Path(path)
    columns, rows = _read_csv(path, ("identity_id", "split"))
    attrs = [c for c in columns if c not in ("identity_id", "split")]
    seen: dict[str, int] = {}
    records = []
    for line, row in rows:
        ident = row["identity_id"]
        if not ident:
            raise DataError("empty identity_id; every row needs a unique identity name", path=path, line=line)
        if ident in seen:
            raise DataError(
                f"identity_id {ident!r} repeats line {seen[ident]}; identities must be unique", path=path, line=line
            )
        seen[ident] = line
        records.append(IdentityRecord(ident, row["split"], {c: row[c] for c in attrs}, line))
    return records


def table_columns(records: Sequence[IdentityRecord]) -> list[str]:
    """The columns of a table of ``records``: identity_id, split, then the attribute columns in order."""
    attrs: dict[str, None] = {}
    for rec in records:
        attrs.update(dict.fromkeys(rec.attributes))
    if not attrs:
        attrs = dict.fromkeys(IDENTITY_COLUMNS[2:])
    return ["identity_id", "split", *attrs]


def write_identity_table(path: str | Path, records: Sequence[IdentityRecord]) -> None:
    """Write ``records`` as ``identities.csv`` (atomically); missing attributes are written as empty cells."""
    columns = table_columns(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for rec in records:
        writer.writerow([rec.identity_id, rec.split, *(rec.attributes.get(c, "") for c in columns[2:])])
    atomic_write_text(path, buffer.getvalue())


def read_track_mapping(path: str | Path) -> list[MappingRow]:
    """Read ``track_mapping.csv`` (``split,sequence,track_id,identity_id``), in file order.

    Raises:
        DataError: missing file or column, an empty cell, a non-integer track_id, or one track mapped to two
            identities (names the file and line).
    """
    path = Path(path)
    _, rows = _read_csv(path, MAPPING_COLUMNS)
    out: list[MappingRow] = []
    seen: dict[TrackKey, MappingRow] = {}
    for line, row in rows:
        empty = [c for c in MAPPING_COLUMNS if not row[c]]
        if empty:
            raise DataError(
                f"empty {','.join(empty)}; expected split,sequence,track_id,identity_id", path=path, line=line
            )
        try:
            track_id = int(row["track_id"])
        except ValueError:
            raise DataError(
                f"track_id {row['track_id']!r} is not an integer (the id column of gt.txt)", path=path, line=line
            ) from None
        rec = MappingRow(row["split"], row["sequence"], track_id, row["identity_id"], line)
        previous = seen.get(rec.key)
        if previous is not None:
            if previous.identity_id != rec.identity_id:
                raise DataError(
                    f"track {'/'.join(map(str, rec.key))} is mapped to {rec.identity_id!r} here and to "
                    f"{previous.identity_id!r} on line {previous.line}; a track shows one identity",
                    path=path,
                    line=line,
                )
            continue
        seen[rec.key] = rec
        out.append(rec)
    return out


def unmapped_identity_name(key: TrackKey) -> str:
    """Identity name of a track without a mapping row: ``<split>/<sequence>/<track_id>``."""
    return f"{key[0]}/{key[1]}/{key[2]}"


@dataclass
class IdentityResolution:
    """The result of :func:`resolve_identities`.

    Attributes:
        track_identity: identity name of every track given.
        order: the global identity order (table order, then unmapped identities sorted); pid = index in it.
        records: the table to write next to the dataset: the input table plus generated rows for unmapped
            (and, without a table, for mapped) identities, in ``order``.
        unused_mapping_rows: mapping rows of the built splits whose track is not in the MOT data.
        unused_identities: table identities no track of the built splits shows.
    """

    track_identity: dict[TrackKey, str]
    order: list[str]
    records: list[IdentityRecord]
    unused_mapping_rows: int = 0
    unused_identities: list[str] = field(default_factory=list)


def resolve_identities(
    tracks: Iterable[TrackKey],
    mapping: Sequence[MappingRow] = (),
    table: Sequence[IdentityRecord] | None = None,
    splits: Sequence[str] = ("train", "val"),
    mapping_path: str | Path = "track_mapping.csv",
    table_path: str | Path = "identities.csv",
) -> IdentityResolution:
    """Give every MOT track a global identity and check the mapping against the table.

    Raises:
        DataError: a mapping row names an identity missing from ``table`` (when a table is given), an identity is
            mapped in two of ``splits`` (a leak between train and val; names both rows), or an unmapped track's
            generated name collides with a table identity.
    """
    tracks = sorted(set(tracks), key=lambda k: (splits.index(k[0]) if k[0] in splits else len(splits), k[1], k[2]))
    rows = [r for r in mapping if r.split in splits]
    if len(rows) < len(mapping):
        log.info(
            "%s: %d rows name splits other than %s and are ignored",
            mapping_path,
            len(mapping) - len(rows),
            "/".join(splits),
        )
    table_ids = {rec.identity_id: rec for rec in table} if table is not None else None
    first_split: dict[str, MappingRow] = {}
    for row in rows:
        if table_ids is not None and row.identity_id not in table_ids:
            raise DataError(
                f"identity {row.identity_id!r} is not in the identity table {table_path}; add a row "
                "for it or fix the mapping",
                path=mapping_path,
                line=row.line,
            )
        other = first_split.setdefault(row.identity_id, row)
        if other.split != row.split:
            raise DataError(
                f"identity {row.identity_id!r} is mapped in split {other.split!r} (line {other.line}) "
                f"and in split {row.split!r} (this line); train and val identities must be disjoint",
                path=mapping_path,
                line=row.line,
            )
        rec = table_ids.get(row.identity_id) if table_ids is not None else None
        if rec is not None and rec.split and rec.split != row.split:
            log.warning(
                "%s:%d: identity %r is mapped in split %r but %s:%d says split %r",
                mapping_path,
                row.line,
                row.identity_id,
                row.split,
                table_path,
                rec.line,
                rec.split,
            )
    by_key = {r.key: r.identity_id for r in rows}
    present = set(tracks)
    unused_rows = sum(1 for r in rows if r.key not in present)
    if unused_rows:
        log.warning("%s: %d mapping rows name tracks not found in the MOT data", mapping_path, unused_rows)
    track_identity: dict[TrackKey, str] = {}
    unmapped: list[IdentityRecord] = []
    for key in tracks:
        if key in by_key:
            track_identity[key] = by_key[key]
            continue
        name = unmapped_identity_name(key)
        if (table_ids is not None and name in table_ids) or name in first_split:
            raise DataError(
                f"unmapped track {name} would take the name of an existing identity; rename that identity",
                path=table_path,
            )
        track_identity[key] = name
        unmapped.append(IdentityRecord(name, key[0]))
    if table is not None:
        base = list(table)
    else:
        base = [IdentityRecord(ident, row.split) for ident, row in first_split.items()]
    records = base + unmapped
    used = set(track_identity.values())
    unused = [rec.identity_id for rec in base if rec.identity_id not in used]
    if unused and table is not None:
        log.warning(
            "%s: %d identities are shown by no track of %s (e.g. %s); they are kept in the table",
            table_path,
            len(unused),
            "/".join(splits),
            ", ".join(unused[:3]),
        )
    return IdentityResolution(track_identity, [r.identity_id for r in records], records, unused_rows, unused)
