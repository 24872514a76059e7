"""Strict configuration files: every key of a TOML file must be one its loader asks for.

:func:`tracked` wraps the parsed TOML so that each table records which keys the loader asked for (by
``get``, ``[]`` or ``in``); a table the loader iterates (``[peers]``, ``[params]``, which are checked by
their own owners) accepts any key. After loading, :func:`refuse_unknown_keys` names the first key nobody
asked for, with the nearest valid one — so ``holdot`` or ``label_colum`` is an error, not a silent default,
and the valid names always follow the loader's code instead of a second list that could drift from it.

What it reveals to whom: nothing; local configuration only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class TrackedTable(dict[str, Any]):
    """A TOML table that remembers which keys were asked for."""

    def __init__(self, data: dict[str, Any], path: str = "") -> None:
        super().__init__({k: tracked(v, f"{path}.{k}" if path else k) for k, v in data.items()})
        self.path = path
        self.asked: set[str] = set()
        self.free = False  # iterated as a whole: any key is accepted

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)

    def _iterated(self) -> None:
        """Iterated as a whole (``[peers]``, ``[params]``, whose owners check the names): any key is accepted."""
        self.free = True

    def __iter__(self) -> Iterator[str]:
        self._iterated()
        return super().__iter__()

    def keys(self):  # type: ignore[override]
        self._iterated()
        return super().keys()

    def items(self):  # type: ignore[override]
        self._iterated()
        return super().items()

    def values(self):  # type: ignore[override]
        self._iterated()
        return super().values()


def untracked(value: Any) -> Any:
    """``value`` as plain dicts and lists, every table in it accepting any key: for sections another owner
    checks in full (``[params]``: the plug-in's parameter class refuses unknown names itself)."""
    if isinstance(value, TrackedTable):
        value.free = True
        return {k: untracked(v) for k, v in dict.items(value)}
    if isinstance(value, list):
        return [untracked(v) for v in value]
    return value


def subtables(table: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The sub-tables of ``table`` (e.g. ``[data.NAME]`` sources), marked as known; its plain keys stay checked."""
    found = [(k, v) for k, v in dict.items(table) if isinstance(v, dict)]
    if isinstance(table, TrackedTable):
        table.asked.update(k for k, _ in found)
    return found


def tracked(value: Any, path: str = "") -> Any:
    if isinstance(value, dict) and not isinstance(value, TrackedTable):
        return TrackedTable(value, path)
    if isinstance(value, list):
        return [tracked(v, path) for v in value]
    return value


def unknown_keys(table: Any) -> list[tuple[str, str, list[str]]]:
    """``(section, key, valid keys)`` for every key of ``table`` (recursively) that no loader asked for."""
    out: list[tuple[str, str, list[str]]] = []
    if not isinstance(table, TrackedTable):
        return out
    for key, value in dict.items(table):
        if not table.free and key not in table.asked:
            out.append((table.path, key, sorted(table.asked)))
        elif isinstance(value, TrackedTable):
            out.extend(unknown_keys(value))
        elif isinstance(value, list):
            for item in value:
                out.extend(unknown_keys(item))
    return out


def describe_unknown(raw: Any, typos_only: bool = False) -> str | None:
    """``unknown key data.label_colum (did you mean 'label_column'?); valid …`` for the first unknown key
    (with ``typos_only``, the first that is close to a valid one: used when parsing stopped half-way)."""
    found = [(s, k, v, difflib.get_close_matches(k, v, n=1, cutoff=0.6)) for s, k, v in unknown_keys(raw)]
    if typos_only:  # the likeliest typo first (keys the parser did not reach yet are unknown too)
        found = sorted((f for f in found if f[3]),
                       key=lambda f: -difflib.SequenceMatcher(None, f[1], f[3][0]).ratio())
    if not found:
        return None
    section, key, valid, match = found[0]
    name = f"{section}.{key}" if section else f"[{key}]"
    hint = f" (did you mean {match[0]!r}?)" if match else ""
    listed = f"; valid {'keys of [' + section + ']' if section else 'sections'}: {', '.join(valid)}" if valid else ""
    return f"unknown key {name}{hint}{listed}"


def refuse_unknown_keys(raw: Any, where: str, error: type[Exception]) -> None:
    """Raise ``error`` naming the first unknown key of the file and the nearest valid name."""
    message = describe_unknown(raw)
    if message:
        raise error(f"{where}: {message}")


@contextmanager
def strict_keys(raw: Any, where: str, error: type[Exception]) -> Iterator[None]:
    """Parse a config inside this block: afterwards every key must have been asked for; if the parser
    raised ``error`` first, the first unknown key is added to its message (a typo is often the cause)."""
    try:
        yield
    except error as exc:
        message = describe_unknown(raw, typos_only=True)
        if message:
            raise error(f"{exc} — and {message}") from exc
        raise
    refuse_unknown_keys(raw, where, error)
