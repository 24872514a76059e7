"""Entity alignment by ECDH private set intersection (PSI) between the guest and each host.

Each party holds a list of record ids. Ids are normalised (:mod:`.ids`: ``str``, stripped, Unicode NFC,
unique), hashed to Curve25519 as a random oracle under a job-specific ``context`` both parties pass
identically (:mod:`.hashing`: RFC 9380 ``hash_to_field`` with SHAKE256, then x-only try-and-increment),
blinded with a fresh secret X25519 scalar per run (:mod:`.blinding`, chunked, on a process pool) and
exchanged so that each side first learns only the intersection *size*, both accept or refuse it against
their own minimums, and only then the intersection itself (:mod:`.protocol`).

What it reveals to whom (details and the order of events in :mod:`.protocol`): to each party, the
other party's set size and the intersection size; then, only if both accepted that size (at least the
job's ``min_intersection`` and each silo's own ``local_floor``, default 100), the intersection. With
several hosts the guest learns every pairwise intersection, each host its own with the guest and which
of those rows are in the all-party intersection. A refusing run reveals sizes only. Everything that
crosses the channel is a Curve25519 point (32 bytes) blinded by a secret scalar, in a fresh random order,
plus verdicts (sizes, minimums) and, after acceptance, positions in the receiver's own random order.
"""

from algorithms.psi.blinding import POINT_BYTES, PsiError, new_scalar
from algorithms.psi.hashing import domain_tag, hash_ids
from algorithms.psi.ids import id_shape, normalise_id, normalise_ids, shape_hint
from algorithms.psi.protocol import (
    DEFAULT_MIN_INTERSECTION,
    IntersectionTooSmall,
    PsiGuest,
    PsiHost,
    PsiResult,
)


def hash_to_curve(ids: list[str], context: str) -> list[bytes]:
    """The hashed points (Montgomery u, 32 bytes each) of normalised ids under ``context``, one per id."""
    data = hash_ids(ids, context)
    return [data[i:i + POINT_BYTES] for i in range(0, len(data), POINT_BYTES)]


__all__ = [
    "DEFAULT_MIN_INTERSECTION", "POINT_BYTES", "IntersectionTooSmall", "PsiError", "PsiGuest", "PsiHost",
    "PsiResult", "domain_tag", "hash_ids", "hash_to_curve", "id_shape", "new_scalar", "normalise_id",
    "normalise_ids", "shape_hint",
]
