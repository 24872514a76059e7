"""Secure aggregation under the horizontal strategies: same models as plain aggregation up to quantisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from algorithms.horizontal.estimator import FederatedClassifier, SimulatedCrash
from algorithms.secagg import EcSigner, KeyVerifier
from algorithms.secagg.horizontal import HORIZONTAL_CONFIG, secure_aggregation
from federation.channel import Channel


def _frame(rng: np.random.Generator, n: int, tag: str, d: int = 4) -> pd.DataFrame:
    X = rng.normal(0, 1, size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ np.linspace(-1, 1, d) + 0.3)))).astype(int)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(d)])
    df.insert(0, "y", y)
    df.insert(0, "id", [f"{tag}-{i}" for i in range(n)])
    return df


@pytest.fixture(scope="module")
def clients() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    return {f"bank-{i}": _frame(rng, 80 + 30 * i, f"b{i}") for i in range(5)}


def _secure(names):
    keys = {c: ec.generate_private_key(ec.SECP256R1()) for c in names}
    return secure_aggregation({c: EcSigner(c, k) for c, k in keys.items()},
                              KeyVerifier({c: k.public_key() for c, k in keys.items()}))


PARAMS = {"rounds": 3, "batch_size": 32, "learning_rate": 0.1, "round_timeout": 20.0, "join_timeout": 20.0,
          "min_fit_clients": 3, "min_updates": 3}


@pytest.mark.parametrize("algorithm, extra", [("fedavg", {}), ("fedprox", {"proximal_mu": 0.1}), ("scaffold", {}),
                                              ("fedadam", {})])
def test_secure_aggregation_gives_the_plain_model_up_to_quantisation(clients, algorithm, extra) -> None:
    plain = FederatedClassifier(algorithm, **PARAMS, **extra).fit(clients)
    collector, sender = _secure(clients)
    secure = FederatedClassifier(algorithm, collector=collector, sender=sender, record=True, **PARAMS,
                                 **extra).fit(clients)
    # per round the sums differ by at most m·clip/(2^(48-3)-1)/2 ≈ 1.5e-7 per coordinate; divided by the
    # total weight and carried through 3 rounds of training this stays far below 1e-6
    assert HORIZONTAL_CONFIG.bits == 48
    assert np.max(np.abs(secure.weights_ - plain.weights_)) < 1e-6
    assert [r.contributors for r in secure.history_] == [r.contributors for r in plain.history_]
    # the aggregator never received a plain update: only secure-aggregation messages
    got = secure.network_.received_by("arbiter")
    assert not [d for d in got if ".upd." in d.tag and ".sa." not in d.tag and "secagg" not in d.tag]
    masked = [d for d in got if d.tag.endswith(".masked")]
    # one secure sum of the preprocessing statistics, then one per round
    assert len(masked) == (1 + 3) * len(clients) and all(d.payload["y"].dtype == np.uint64 for d in masked)


def test_a_client_crashing_after_masking_is_recovered(clients) -> None:
    class CrashAfterMasking(Channel):
        def __init__(self, inner: Channel) -> None:
            super().__init__(inner.party_id)
            self.inner = inner
            self.seen = 0

        def send(self, receiver, tag, payload):
            if tag.endswith(".consistency"):  # after its masked input, before unmasking
                self.seen += 1
                if self.seen == 2:  # the first secure sum is the preprocessing one; crash in round 1
                    raise SimulatedCrash()
            self.inner.send(receiver, tag, payload)

        def recv(self, sender, tag, timeout=None):
            return self.inner.recv(sender, tag, timeout)

    params = dict(PARAMS, rounds=1, round_timeout=6.0)
    plain = FederatedClassifier("fedavg", **params).fit(clients)
    collector, sender = _secure(clients)
    secure = FederatedClassifier("fedavg", collector=collector, sender=sender, faults={"bank-2": CrashAfterMasking},
                                 **params).fit(clients)
    # bank-2's masked input is in the sum: its self-mask was rebuilt from the others' shares
    assert secure.history_[0].contributors == plain.history_[0].contributors
    assert np.max(np.abs(secure.weights_ - plain.weights_)) < 1e-6


def test_preprocessing_statistics_are_summed_securely(clients) -> None:
    from algorithms.secagg.horizontal import wide_decode, wide_encode

    x = np.array([0.0, -3.5, 1e15, -2.25e20, 8000.0])
    enc = [wide_encode(x) for _ in range(7)]
    assert np.allclose(wide_decode(np.sum(enc, axis=0, dtype=np.uint64), 7), 7 * x, rtol=1e-15, atol=1e-7)
    # raw features with large magnitudes: the pooled means/scales equal the plain run's
    raw = {}
    for name, f in clients.items():
        f = f.copy()
        f["x0"] = f["x0"] * 1e6 + 3e6  # bill amounts in the millions: sums of squares ~1e15
        raw[name] = f
    plain = FederatedClassifier("fedavg", record=True, **dict(PARAMS, rounds=1)).fit(raw)
    collector, sender = _secure(raw)
    secure = FederatedClassifier("fedavg", collector=collector, sender=sender, record=True,
                                 **dict(PARAMS, rounds=1)).fit(raw)
    assert secure.summary_.space.count == plain.summary_.space.count
    assert np.allclose(secure.summary_.space.mean, plain.summary_.space.mean, rtol=1e-12)
    assert np.allclose(secure.summary_.space.scale, plain.summary_.space.scale, rtol=1e-9)
    got = secure.network_.received_by("arbiter")
    prep = [d.payload for d in got if d.tag.startswith("prep.")]
    assert prep and all(set(p) == {"categories", "numeric", "secure"} for p in prep)  # no sums in the clear


def test_every_message_of_a_secure_job_is_declared(clients) -> None:
    from fnmatch import fnmatch

    from algorithms import catalogue

    collector, sender = _secure(clients)
    fed = FederatedClassifier("scaffold", collector=collector, sender=sender, record=True,
                              **dict(PARAMS, rounds=2)).fit(clients)
    plugin = catalogue.get("scaffold")
    for d in fed.network_.transcript:
        receiver = "arbiter" if d.receiver == "arbiter" else "client"
        sender_role = "arbiter" if d.sender == "arbiter" else "client"
        assert any(x.receiver == receiver and x.sender == sender_role and fnmatch(d.tag, x.tag)
                   for x in plugin.disclosures), f"undeclared message {d.tag!r} to {d.receiver}"
        if receiver == "arbiter":  # the only arrays the aggregator receives are masked ring vectors
            stack = [d.payload]
            while stack:
                v = stack.pop()
                if isinstance(v, dict):
                    stack.extend(v.values())
                elif isinstance(v, list):
                    stack.extend(v)
                elif isinstance(v, np.ndarray) and not d.tag.startswith("prep."):
                    assert d.tag.endswith(".masked") and v.dtype == np.uint64, d.tag
