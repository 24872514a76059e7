"""Message tags and the schema check of the horizontal protocol (shared by the client and aggregator roles).

Tags carry the client's *incarnation* (how many times its role started for this job, kept in its
checkpoint) and a per-incarnation instruction counter, so a restarted or rejoining client never collides
with messages of its earlier life, and a late update can only ever match the round it was made for:

=======================  =====================  ===============================================
tag                      direction              content
=======================  =====================  ===============================================
``join.{inc}``           client → aggregator    feature names, schema digest, row count, notes
``welcome.{inc}``        aggregator → client    next round, the feature space (or none yet),
                                                last round whose update from it was accepted
``prep.{inc}``           client → aggregator    local feature statistics (federated preprocessing)
``prep.global.{inc}``    aggregator → client    the pooled feature space
``ins.{inc}.{k}``        aggregator → client    fit (global weights + strategy extras) / wait /
                                                rejoin / finish (final weights) / abort (reason)
``upd.{inc}.{k}``        client → aggregator    the contribution to instruction ``k`` (summable
                                                vectors + metric sums)
``leave.{inc}``          client → aggregator    the client leaves the job
=======================  =====================  ===============================================

What it reveals to whom: see :mod:`algorithms.horizontal.plugin` (the disclosures per tag).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence


def join(ns: str, inc: int) -> str:
    return f"{ns}join.{inc}"


def welcome(ns: str, inc: int) -> str:
    return f"{ns}welcome.{inc}"


def prep(ns: str, inc: int) -> str:
    return f"{ns}prep.{inc}"


def prep_global(ns: str, inc: int) -> str:
    return f"{ns}prep.global.{inc}"


def instruction(ns: str, inc: int, k: int) -> str:
    return f"{ns}ins.{inc}.{k}"


def update(ns: str, inc: int, k: int) -> str:
    return f"{ns}upd.{inc}.{k}"


def leave(ns: str, inc: int) -> str:
    return f"{ns}leave.{inc}"


def schema_digest(names: Sequence[str]) -> str:
    """SHA-256 of the ordered feature names and their type (every feature is a float64 column)."""
    return hashlib.sha256(json.dumps([[n, "float64"] for n in names]).encode()).hexdigest()


def schema_difference(names: Sequence[str], reference: Sequence[str]) -> str:
    """Which columns differ from the reference schema, in words."""
    missing = [n for n in reference if n not in names]
    extra = [n for n in names if n not in reference]
    parts = []
    if missing:
        parts.append(f"missing columns {missing}")
    if extra:
        parts.append(f"unexpected columns {extra}")
    if not parts:
        parts.append(f"columns in another order ({list(names)} instead of {list(reference)})")
    return ", ".join(parts)


__all__ = ["instruction", "join", "leave", "prep", "prep_global", "schema_difference", "schema_digest",
           "update", "welcome"]
