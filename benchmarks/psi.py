"""PSI alignment time and memory: a guest and a host with N ids each (90 % shared), as two processes.

Run: ``python -m benchmarks.psi --ids N`` (default 30,000). Each party is its own process with its own
process pool (the silo's shared pool, one worker per core), and the two talk through a pipe carrying
exactly the bytes the codec produces (length-prefixed frames), so memory is measured per party. Both
parties share this machine's cores, so the time is an upper bound for two separate machines.

The protocol is the full one (cardinality round, verdicts, then membership). The output lists each
party's time per step, its CPU seconds (main process and pool workers) and its peak resident memory
(main process plus every descendant, VmHWM), the budget per id, and as its LAST lines::

    psi_seconds=<wall seconds from start to both parties holding the intersection>
    psi_peak_rss_gib=<the larger party's peak resident memory, GiB>
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing
import os
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from algorithms.base import Parties
from algorithms.psi import PsiGuest, PsiHost
from federation import codec
from federation.channel import DEFAULT_TIMEOUT, Channel, ChannelError, ChannelTimeout
from federation.codec import Payload

PARTIES = Parties(guest="bank", hosts=("insurer",))


class PipeChannel(Channel):
    """A two-party channel over a ``multiprocessing`` pipe: frames of (tag, codec bytes); a reader thread files
    every frame in a mailbox so neither side blocks the other's sends."""

    def __init__(self, party_id: str, peer: str, conn: Connection) -> None:
        super().__init__(party_id)
        self.peer, self._conn = peer, conn
        self._box: dict[str, bytes] = {}
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._closed = False
        self.bytes_sent = 0
        threading.Thread(target=self._read, daemon=True, name=f"pipe-{party_id}").start()

    def _read(self) -> None:
        try:
            while True:
                frame = self._conn.recv_bytes()
                n = int.from_bytes(frame[:2], "big")
                with self._cond:
                    self._box[frame[2:2 + n].decode()] = frame[2 + n:]
                    self._cond.notify_all()
        except (EOFError, OSError):
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def send(self, receiver: str, tag: str, payload: Payload) -> None:
        if receiver != self.peer:
            raise ChannelError(f"unknown party {receiver!r}")
        data = codec.encode(payload)
        header = tag.encode()
        with self._send_lock:
            self._conn.send_bytes(len(header).to_bytes(2, "big") + header + data)
            self.bytes_sent += len(data)

    def recv(self, sender: str, tag: str, timeout: float | None = None) -> Payload:
        deadline = time.monotonic() + (timeout or DEFAULT_TIMEOUT)
        with self._cond:
            while tag not in self._box:
                if self._closed:
                    raise ChannelError(f"pipe closed while waiting for {tag!r}")
                if not self._cond.wait(max(0.0, min(1.0, deadline - time.monotonic()))) \
                        and time.monotonic() > deadline:
                    raise ChannelTimeout(f"{self.party_id} timed out waiting for {tag!r} from {sender!r}")
            return codec.decode(self._box.pop(tag))


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return out


def _usage(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) summed over ``pid`` and its living descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu, rss = 0.0, 0
    for p in _tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(stat[11]) + int(stat[12])) / tick
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    rss += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            pass
    return cpu, rss


def make_ids(n: int, role: str) -> list[str]:
    """The party's ids, 90 % shared; the host's in a different (shuffled) row order. Each id string is built in
    row order, as a silo reading its data file builds them (so the strings sit in memory in row order)."""
    overlap = int(n * 0.9)
    start = 0 if role == "guest" else n - overlap
    numbers = list(range(start, start + n))
    if role == "host":  # a different row order from the guest's
        import random

        random.Random(0).shuffle(numbers)
    return [f"CUST-{i:08d}" for i in numbers]


def _dry_hash_and_blind(scalar: bytes, ids: list[str], context: str, offset: int, using: str = "") -> bytes:
    digests = b"".join(hashlib.sha256(i.encode()).digest() for i in ids)
    return _dry_blind(scalar, digests, offset, "self")


def _dry_blind(scalar: bytes, points: bytes, offset: int, peer: str, using: str = "") -> bytes:
    import numpy as np

    return (np.frombuffer(points, np.uint8).reshape(-1, 32) ^ np.frombuffer(scalar, np.uint8)).tobytes()


def use_dry_crypto() -> None:
    """``--dry-crypto``: SHA-256 for the hash and XOR with the scalar for blinding (commutative, so the protocol
    runs unchanged), inline in each party's process. Measures memory and the non-cryptographic time of the
    exact same data flow at sizes the real run cannot reach in the time available. Benchmark only: this
    is not encryption."""
    from algorithms.psi import blinding, protocol

    blinding._hash_and_blind_task = _dry_hash_and_blind  # type: ignore[assignment]
    blinding._blind_task = _dry_blind  # type: ignore[assignment]
    protocol.PARALLEL_MIN = 1 << 62  # inline: the pool workers would import the real functions


def party(role: str, n: int, conn: Connection, ready: Any, go: Any, results: Any, dry: bool = False) -> None:
    if dry:
        use_dry_crypto()
    me = PARTIES.guest if role == "guest" else PARTIES.hosts[0]
    peer = PARTIES.hosts[0] if role == "guest" else PARTIES.guest
    ids = make_ids(n, role)
    channel = PipeChannel(me, peer, conn)
    from algorithms.paillier.parallel import shared_executor
    from algorithms.psi.blinding import implementation

    shared_executor().submit(int, 0).result()  # start the pool before the clock, as a running silo has it
    x25519 = implementation()  # likewise its pick of X25519 (timed once per process, ~0.2 s)
    cpu0, _ = _usage(os.getpid())
    main0 = time.process_time()
    ready.wait()
    go.wait()
    start = time.perf_counter()
    cls = PsiGuest if role == "guest" else PsiHost
    obj = cls(ids, PARTIES, "bench-job/salt")
    result = obj.run(channel)
    seconds = time.perf_counter() - start
    cpu1, rss = _usage(os.getpid())
    main_cpu = time.process_time() - main0
    digest = hashlib.sha256("\n".join(result.ids).encode()).hexdigest()
    results.put({"role": role, "seconds": seconds, "cpu": cpu1 - cpu0, "main_cpu": main_cpu, "rss": rss,
                 "size": len(result), "digest": digest, "timings": obj.timings, "bytes_sent": channel.bytes_sent,
                 "x25519": x25519})
    conn.close()
    shared_executor().shutdown(wait=True)


def primitive_costs(n: int = 20_000) -> tuple[float, dict[str, float]]:
    """CPU µs per id of the random-oracle hash and of one X25519 multiplication with each implementation, measured
    here and now (after a warm-up, the best of three passes: the floor the protocol's per-id work is compared
    against)."""
    from algorithms.psi.blinding import cpu_costs
    from algorithms.psi.hashing import hash_ids

    ids = [f"CUST-{i:08d}" for i in range(n)]
    cpu_costs(hash_ids(ids[:500], "warm-up"), rounds=1)
    hashing: list[float] = []
    for rep in range(3):
        t = time.process_time()
        points = hash_ids(ids, f"calibration-{rep}")
        hashing.append((time.process_time() - t) / n * 1e6)
    return min(hashing), {name: s * 1e6 for name, s in cpu_costs(points).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, default=30_000, help="ids per party (90 %% shared)")
    parser.add_argument("--dry-crypto", action="store_true",
                        help="SHA-256 + XOR instead of the curve (memory and non-crypto time only; not secure)")
    args = parser.parse_args()
    n = args.ids
    ctx = multiprocessing.get_context("spawn")
    a, b = ctx.Pipe(duplex=True)
    ready, go, results = ctx.Barrier(3), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=party, args=(role, n, conn, ready, go, results, args.dry_crypto),
                         name=f"psi-{role}")
             for role, conn in (("guest", a), ("host", b))]
    for p in procs:
        p.start()
    ready.wait()
    start = time.perf_counter()
    go.set()
    out = {r["role"]: r for r in (results.get() for _ in procs)}
    wall = time.perf_counter() - start
    for p in procs:
        p.join(timeout=60)
    g, h = out["guest"], out["host"]
    overlap = int(n * 0.9)
    assert g["size"] == h["size"] == overlap and g["digest"] == h["digest"], (g["size"], h["size"])
    print(f"ids per side={n} intersection={overlap} cores={os.cpu_count()} load_avg={os.getloadavg()[0]:.2f}")
    for role in ("guest", "host"):
        r = out[role]
        steps = " ".join(f"{k.replace(' ', '_')}={v:.2f}" for k, v in r["timings"].items())
        print(f"{role}: seconds={r['seconds']:.2f} cpu_seconds={r['cpu']:.1f} "
              f"main_process_cpu_seconds={r['main_cpu']:.1f} "
              f"peak_rss_gib={r['rss'] / 2**30:.3f} bytes_sent={r['bytes_sent']} x25519={r['x25519']} {steps}")
    cpu = g["cpu"] + h["cpu"]
    if args.dry_crypto:
        print(f"dry crypto (SHA-256 + XOR, not secure): cpu_seconds_total={cpu:.1f}")
        print(f"psi_dry_seconds={wall:.2f}")
        print(f"psi_peak_rss_gib={max(g['rss'], h['rss']) / 2**30:.3f}")
        return
    hashing, costs = primitive_costs()
    used = g["x25519"]  # the guest's pick (the host's is on its line)
    x25519 = costs[used]
    floor = 2 * n * (hashing + 2 * x25519) / 1e6  # per id and party: one hash, two X25519 (own set, peer's set)
    main = g["main_cpu"] + h["main_cpu"]
    print("x25519 per multiplication: " + " ".join(f"{k}_us={v:.1f}" for k, v in costs.items())
          + f" -> the guest used {used}")
    print(f"budget per id and party: hash_us={hashing:.1f} x25519_us={x25519:.1f} (x2) -> floor "
          f"{hashing + 2 * x25519:.1f} us; measured cpu_us_per_id_per_party={cpu / (2 * n) * 1e6:.1f} = pool workers "
          f"{(cpu - main) / (2 * n) * 1e6:.1f} + main process {main / (2 * n) * 1e6:.1f} (shuffles, sorts, matching, "
          "messages)")
    print(f"cpu_seconds_total={cpu:.1f} cpu_floor_seconds={floor:.1f} cpu_overhead_vs_floor={cpu / floor:.2f} "
          f"cpu_utilisation={cpu / wall / (os.cpu_count() or 1):.2f} (of {os.cpu_count()} cores)")
    print(f"psi_seconds={wall:.2f}")
    print(f"psi_peak_rss_gib={max(g['rss'], h['rss']) / 2**30:.3f}")


if __name__ == "__main__":
    main()
