"""Record ids as PSI sees them: normalised, unique, and described by their shape when nothing matches.

:func:`normalise_ids` turns every id into ``str`` stripped of surrounding whitespace, Unicode NFC, and
refuses missing, empty and duplicate ids naming the rows. It takes a list or a numpy array; for ten
million string ids it runs in C-level passes (one ``strip`` per id, one ASCII check over all of them, one
set for duplicates) rather than a Python function call per id.

:func:`shape_hint` explains an empty or tiny intersection: how many ids each side had, and the *shape*
of a few of the caller's own ids (letters → ``A``, digits → ``9``, everything else kept, e.g. ``C000123``
→ ``A999999``), so a bank sees at once that its ids carry a prefix the insurer's may not.

What it reveals to whom: nothing leaves the party; the hint shows a party only the shape of its own ids
and the peer's id count, which PSI reveals anyway.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from algorithms.psi.blinding import PsiError


def normalise_id(value: Any, row: int | None = None) -> str:
    """``str(value)`` stripped and NFC-normalised; refuses None, NaN and empty ids (naming the row)."""
    where = "" if row is None else f" at row {row}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise PsiError(f"missing id{where}")
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    text = unicodedata.normalize("NFC", str(value).strip())
    if not text:
        raise PsiError(f"empty id{where}")
    return text


def _fast_strings(ids: Sequence[Any] | np.ndarray) -> list[str] | None:
    """Stripped ids when every id is already a ``str`` (or a numpy string array), else None."""
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind != "U":
            return None
        values: list[Any] = ids.tolist()
    else:
        values = list(ids)
        if set(map(type, values)) != {str}:
            return None
    out = [v.strip() for v in values]
    if not "".join(out).isascii():  # ASCII text is already NFC
        out = [unicodedata.normalize("NFC", v) for v in out]
    return out


def normalise_ids(ids: Sequence[Any] | np.ndarray) -> list[str]:
    """Normalise every id and refuse duplicates (naming both rows)."""
    normalised = _fast_strings(ids)
    if normalised is None:
        values = ids.tolist() if isinstance(ids, np.ndarray) else ids
        normalised = [normalise_id(v, i) for i, v in enumerate(values)]
    elif normalised and min(map(len, normalised)) == 0:
        raise PsiError(f"empty id at row {normalised.index('')}")
    if not normalised:
        raise PsiError("no ids to align")
    if len(set(normalised)) != len(normalised):
        first: dict[str, int] = {}
        for i, v in enumerate(normalised):
            j = first.setdefault(v, i)
            if j != i:
                raise PsiError(f"duplicate id {v!r} at rows {j} and {i}")
    return normalised


def id_shape(value: str, limit: int = 24) -> str:
    """``'C000123'`` → ``'A999999'``: letters become ``A``, digits ``9``, other characters stay."""
    shape = "".join("9" if c.isdigit() else "A" if c.isalpha() else c for c in value[:limit])
    return shape + ("…" if len(value) > limit else "")


def shape_hint(own_ids: Sequence[str], me: str, peer_sizes: dict[str, int], sample: int = 10_000) -> str:
    """One sentence: the id counts of both sides and the commonest shapes of the caller's own ids."""
    head = list(own_ids[:sample])
    shapes = Counter(id_shape(v) for v in head).most_common(3)
    shown = ", ".join(f"'{s}' ({n} of {len(head)})" for s, n in shapes)
    peers = ", ".join(f"{p} had {n}" for p, n in peer_sizes.items())
    return (f"{me} had {len(own_ids)} ids, {peers}. If the silos format ids differently (e.g. 'C000123' vs "
            f"'123'), make them agree; {me}'s ids look like {shown}")
