"""Atomic file output and small JSON helpers.

Outputs are written to a temporary file in the destination folder and moved into place with :func:`os.replace`,
so an interrupted job never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", encoding: str | None = "utf-8", fsync: bool = True
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` and atomically move it onto ``path`` when the block succeeds.

    ``mode`` is ``"w"`` (text) or ``"wb"`` (binary). On an exception the temporary file is removed and ``path``
    keeps its previous content. ``fsync=False`` skips flushing to disk (for many small files whose index, written
    last with ``fsync``, is what counts).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    path = Path(path)
    if path.is_symlink():  # write through the link: a shared file stays shared, the link stays a link
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | Path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (``fsync=False``: without forcing it to disk)."""
    with atomic_open(path, "wb", fsync=fsync) as handle:
        handle.write(data)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | Path, fix: str = "delete or regenerate it", error: type[Exception] | None = None) -> Any:
    """Read a JSON file; a missing, unreadable, non-UTF-8 or invalid file raises ``error`` (default
    :class:`cgclip.errors.CgclipError`) naming the file, the problem and ``fix``."""
    from cgclip.errors import CgclipError, DataError

    err = error or CgclipError
    path = Path(path)
    if not path.exists():
        raise err(f"file not found; {fix}", path=path)
    try:
        text = read_text(path, "JSON file")
    except DataError as exc:  # unreadable, a folder, a device or a pipe, not UTF-8: the same words as every text file
        raise err(f"{exc.message}; {fix}", path=path, line=exc.line) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise err(f"not valid JSON ({exc.msg} at line {exc.lineno}); {fix}", path=path) from None


#: JSON's names for the Python types a JSON file's values can have (for error messages).
_JSON_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number"}


def _json_type_ok(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


def _json_type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_JSON_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def read_json_object(
    path: str | Path,
    required: dict[str, type | tuple[type, ...]] | None = None,
    optional: dict[str, type | tuple[type, ...]] | None = None,
    *,
    fix: str = "delete or regenerate it",
    error: type[Exception] | None = None,
    extra: bool = True,
) -> dict[str, Any]:
    """Read a JSON object and check the types of its keys: ``required`` ones must be there, ``optional`` ones may
    be missing or null, and other keys are refused unless ``extra``. Every problem (see :func:`read_json` too)
    raises ``error`` (default :class:`cgclip.errors.CgclipError`) naming the file, the key and ``fix``: the one
    checked reader behind manifests, run metadata and resumable states."""
    from cgclip.errors import CgclipError

    err = error or CgclipError
    obj = read_json(path, fix, err)
    if not isinstance(obj, dict):
        raise err(f"expected a JSON object, found {_json_type_name(type(obj))}; {fix}", path=path)
    for key, kind in (required or {}).items():
        if key not in obj:
            raise err(f"the key {key!r} is missing; {fix}", path=path)
        if not _json_type_ok(obj[key], kind):
            raise err(f"{key!r} should be {_json_type_name(kind)}, found {obj[key]!r:.60}; {fix}", path=path)
    for key, kind in (optional or {}).items():
        if obj.get(key) is not None and not _json_type_ok(obj[key], kind):
            raise err(f"{key!r} should be {_json_type_name(kind)}, found {obj[key]!r:.60}; {fix}", path=path)
    if not extra:
        unknown = sorted(set(obj) - set(required or {}) - set(optional or {}))
        if unknown:
            raise err(f"unknown key {', '.join(map(repr, unknown))}; {fix}", path=path)
    return obj


def _json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays and paths JSON-serialisable."""
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def check_parents(path: str | Path, option: str = "--out") -> None:
    """Refuse, before any work starts, an output path that cannot be written: one below an existing *file*, through
    a symlink loop, or whose nearest existing folder does not let this process create files."""
    from cgclip.errors import ConfigError

    path = Path(path)
    try:
        path.resolve()
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # a new path, or one under a file (named just below)
        pass
    except (RuntimeError, OSError) as exc:  # RuntimeError: Python 3.11's "Symlink loop"; OSError: name too long ...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{option}: the path cannot be used ({reason}); choose another path", path=path) from None
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"{option}: {parent} is a file, so nothing can be written under it; choose another path", path=path
                )
            check_writable(parent, option, path)
            return


def check_writable(folder: Path, option: str, path: Path) -> None:
    """Refuse a ``folder`` this process cannot create a file in (probed with a file made and removed at once, so
    read-only mounts and access rules count as well as permission bits)."""
    from cgclip.errors import ConfigError

    try:
        fd, probe = tempfile.mkstemp(prefix=".cgclip-write-check-", dir=folder)
    except OSError as exc:
        raise ConfigError(
            f"{option}: cannot write in {folder} ({exc.strerror or exc}); choose another path or make it writable",
            path=path,
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_output_dir(
    path: str | Path,
    ours: bool | Callable[[Path], bool],
    option: str = "--out",
    fix: str = "choose a new folder",
) -> None:
    """Refuse, before any work starts, an output folder that would overwrite what cgclip did not write.

    ``path`` may be missing or an empty folder (both fine), or a folder that cgclip wrote itself (``ours``, recognised
    by the caller's marker — a predicate on the path, asked only once the path itself passed its checks: it may be
    reused or resumed). A file, a path under a file, or a non-empty folder of other files raises
    :class:`cgclip.errors.ConfigError` naming the path and the fix.
    """
    from cgclip.errors import ConfigError

    path = Path(path)
    check_parents(path, option)
    ours = ours(path) if callable(ours) else ours
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} names a file, not a folder: {fix}", path=path)
    if path.is_dir() and not ours and any(path.iterdir()):
        example = sorted(p.name for p in path.iterdir())[0]
        raise ConfigError(
            f"{option} is a folder of files cgclip did not write (e.g. {example}); nothing was changed: {fix}",
            path=path,
        )
    if path.is_dir():
        check_writable(path, option, path)


def _json_with(keys: tuple[str, ...]) -> Callable[[Path], bool]:
    """A test for "a JSON object holding all of ``keys``" (how cgclip recognises a JSON file it wrote)."""

    def test(path: Path) -> bool:
        try:
            existing = read_json(path)
        except Exception:  # noqa: BLE001 - unreadable or not JSON: not ours
            return False
        return isinstance(existing, dict) and all(k in existing for k in keys)

    return test


def check_output_file(
    path: str | Path,
    option: str = "--output",
    ours: Callable[[Path], bool] | tuple[str, ...] = ("protocol",),
    example: str = "results.json",
) -> None:
    """Refuse, before any work starts, an output file that cannot be written or that cgclip did not write.

    Fine: a new file in an existing folder (or under folders still to be made), or an existing file cgclip wrote —
    ``ours`` tells (a predicate on the path, or the keys a JSON object of ours holds — ``()``: any JSON object;
    default ``protocol``). Raises :class:`cgclip.errors.ConfigError` for a folder, a path under a file, or a
    foreign file.
    """
    from cgclip.errors import ConfigError

    path = Path(path)
    check_parents(path, option)
    if path.is_dir():
        raise ConfigError(f"{option} names a folder; give a file name (e.g. {path / example})", path=path)
    if path.exists() and not path.is_file():
        raise ConfigError(f"{option} names a device or a pipe, not a file; choose another path", path=path)
    test = _json_with(ours) if isinstance(ours, tuple) else ours
    if path.exists() and not test(path):
        raise ConfigError(
            f"{option} names an existing file cgclip did not write; nothing was changed: choose another path", path=path
        )


#: Weight files that are Python pickles: loading one can run code, so cgclip never does.
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def check_safe_weights(model_dir: str | Path) -> None:
    """Refuse a model folder whose weights are only pickle files (``pytorch_model.bin`` ...), naming the fix."""
    from cgclip.errors import CheckpointError

    folder = Path(model_dir)
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for pattern in PICKLE_WEIGHTS for p in folder.glob(pattern))
    if pickles:
        raise CheckpointError(
            f"weights are in pickle format ({pickles[0]}), which cgclip never loads (it can run "
            "code): re-save them as safetensors on a trusted machine, e.g. "
            "`Model.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)`",
            path=folder,
        )


#: Text files cgclip reads (tables, gt.txt, name lists, caption stores) are UTF-8, with or without a byte-order mark.
TEXT_ENCODING = "utf-8-sig"


def read_text(path: str | Path, what: str = "text file") -> str:
    """The contents of a UTF-8 text file (a leading BOM dropped), or :class:`cgclip.errors.DataError` naming the
    file, the line of the first byte that is not UTF-8, and the fix; unreadable files get one line too."""
    from cgclip.errors import DataError

    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise DataError(f"expected a {what}, found a device or a pipe (not a regular file)", path=path)
    try:
        data = path.read_bytes()
    except PermissionError:
        raise DataError(
            f"cannot read this {what}: permission denied; make it readable (chmod u+r)", path=path
        ) from None
    except IsADirectoryError:
        raise DataError(f"expected a {what}, found a folder", path=path) from None
    except OSError as exc:
        raise DataError(f"cannot read this {what} ({exc.strerror or type(exc).__name__})", path=path) from None
    try:
        return data.decode(TEXT_ENCODING)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"byte 0x{data[exc.start]:02x} is not UTF-8: cgclip reads UTF-8 text (with or without BOM); "
            "re-save the file as UTF-8 (in a spreadsheet: 'CSV UTF-8')",
            path=path,
            line=line,
        ) from None
