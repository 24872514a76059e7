"""Shared fixtures: one 2048-bit Paillier key pair per test session (keys below 2048 bits are refused)."""

from __future__ import annotations

import pytest

from algorithms.paillier import PrivateKey, PublicKey, generate_keypair


@pytest.fixture(scope="session")
def keypair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(2048)
