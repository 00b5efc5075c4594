"""The JSON files VertebroPlan exchanges (``.vplan.json`` plans, 3D Slicer ``.mrk.json``
markups), read and written the same way.

Why one place: both are read whole, and every way the text can fail (missing, unreadable,
not JSON, nested too deeply for the parser, a number Python will not convert) must become
the format's own error naming the file, never a traceback; both are written atomically so
that a crash or a full disk never leaves half a file. Each format keeps its own wording
(`JsonWording`) of what is wrong.
"""

from __future__ import annotations

import json
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planning.atomic_file import atomic_open

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40


def short_repr(value: Any) -> str:
    """``repr`` cut to a readable length and depth (a value may be a huge nested list)."""
    return _REPR.repr(value)


@dataclass(frozen=True)
class JsonWording:
    """How one file format says its text is not JSON it can read: format strings of
    ``{path}`` and, for a syntax error, ``{line}``, ``{column}``, ``{msg}``, for any other
    value the parser refuses, ``{exc}``; ``missing`` is said when the file does not exist
    (a format may say what should have been there)."""

    syntax: str
    too_deep: str
    refused: str
    missing: str = "'{path}' does not exist."

    @classmethod
    def of(cls, kind: str, missing: str | None = None) -> JsonWording:
        """The one way every VertebroPlan JSON format (plan, markups, training case) says
        what is wrong with a file, ``kind`` naming the format ("plan file")."""
        return cls(
            syntax="'{path}' is not valid JSON (line {line}, column {column}: {msg}); "
                   f"it may be incomplete or not a {kind}.",
            too_deep=f"'{{path}}' is not a {kind} VertebroPlan can read: its lists or "
                     "objects are nested too deeply.",
            refused="'{path}' is not valid JSON ({exc}).",
            missing=missing or cls.missing,
        )


def read_json(path: Path, error: type[Exception], wording: JsonWording, *,
              encoding: str = "utf-8") -> Any:
    """The parsed content of the JSON file ``path``; any failure raises ``error`` with a
    message naming the file."""
    try:
        text = path.read_text(encoding=encoding)
    except FileNotFoundError as exc:
        raise error(wording.missing.format(path=path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"'{path}' cannot be read: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(wording.syntax.format(path=path, line=exc.lineno, column=exc.colno,
                                          msg=exc.msg)) from exc
    except RecursionError as exc:
        raise error(wording.too_deep.format(path=path)) from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise error(wording.refused.format(path=path, exc=exc)) from exc


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON, atomically (temp file in the same folder,
    fsync, rename over the target)."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
