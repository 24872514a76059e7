"""Ahead-of-time generation of Paillier obfuscators, so encryption is off the protocol's critical path.

An obfuscator (a random n-th power, ~0.7 ms with DJN) does not depend on the plaintext. A party that
knows how many it will need this run (hosts: one per row and batch for ``[[u]]``; the guest: one per row
for re-randomising ``[[d]]``) generates them in a background thread on the shared process pool while the
protocol waits on peers, and :class:`PooledEncryptor` consumes them in order. Work is cut into small
chunks so urgent tasks (multi-exponentiations, decryptions) never queue long behind it.

What it reveals: nothing; obfuscators never leave the party (only ciphertexts built from them do).
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Executor

from gmpy2 import mpz

from algorithms.paillier import Encryptor, PublicKey


class ObfuscatorPool:
    """A bounded buffer of fresh obfuscators filled by a background thread, up to a total ``budget``."""

    def __init__(self, encryptor: Encryptor, budget: int, capacity: int, chunk: int = 256) -> None:
        self._encryptor = encryptor
        self._budget = max(0, budget)
        self._capacity = max(chunk, capacity)
        self._chunk = chunk
        self._buffer: deque[mpz] = deque()
        self._reserved = 0  # generated or being generated
        self._in_flight = 0
        self._stopped = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._fill, name="obfuscator-pool", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and len(self._buffer) >= self._capacity:
                    self._cond.wait()
                if self._stopped or self._reserved >= self._budget:
                    return
                count = min(self._chunk, self._budget - self._reserved)
                self._reserved += count
                self._in_flight += count
            try:
                fresh = self._encryptor.obfuscators(count)
            except BaseException as exc:  # surfaced to the consumer by take()
                with self._cond:
                    self._error = exc
                    self._in_flight -= count
                    self._cond.notify_all()
                return
            with self._cond:
                self._buffer.extend(fresh)
                self._in_flight -= count
                self._cond.notify_all()

    def take(self, count: int) -> list[mpz]:
        """``count`` obfuscators, in generation order; generates inline once the budget is used up."""
        out: list[mpz] = []
        with self._cond:
            while len(out) < count:
                if self._buffer:
                    k = min(count - len(out), len(self._buffer))
                    out.extend(self._buffer.popleft() for _ in range(k))
                    self._cond.notify_all()
                elif self._error is not None:
                    raise RuntimeError("obfuscator generation failed") from self._error
                elif self._stopped or (self._reserved >= self._budget and self._in_flight == 0):
                    break
                else:
                    self._cond.wait()
        if len(out) < count:
            out.extend(self._encryptor.obfuscators(count - len(out)))
        return out

    def close(self) -> None:
        """Stop generating (unused obfuscators are dropped)."""
        with self._cond:
            self._stopped = True
            self._buffer.clear()
            self._cond.notify_all()


# One generating encryptor per (party, key, executor) in this process: its fixed-base table is built once
# per worker process and reused by later runs under the same key (tests reuse one session key).
_GENERATORS: dict[tuple[str, str, int, int], Encryptor] = {}
_GENERATORS_LOCK = threading.Lock()


def _generator(party: str, public_key: PublicKey, executor: Executor | None) -> Encryptor:
    key = (party, public_key.fingerprint, int(public_key.hs or 0), id(executor))
    with _GENERATORS_LOCK:
        if key not in _GENERATORS:
            _GENERATORS[key] = Encryptor(public_key, executor=executor)
        return _GENERATORS[key]


class PooledEncryptor(Encryptor):
    """An :class:`Encryptor` whose ``encrypt``/``rerandomize`` draw obfuscators from a background pool."""

    def __init__(self, public_key: PublicKey, executor: Executor | None, budget: int, capacity: int,
                 party: str = "") -> None:
        super().__init__(public_key, executor=executor)
        self.pool = ObfuscatorPool(_generator(party, public_key, executor), budget, capacity)

    def obfuscators(self, count: int) -> list[mpz]:
        return self.pool.take(count) if count > 0 else []

    def close(self) -> None:
        self.pool.close()
