"""A wrong CA or swapped ports say so: the arbiter's control calls and a silo's data-plane links name the party,
the address and the cause ("not signed by our CA", "not a control plane") instead of "not reachable"."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from federation.certs import TlsConfig, provision
from federation.grpc_transport import PartyNode
from silo.control import ControlClient, ControlError, ControlServer


@pytest.fixture(scope="module")
def two_cas(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ours, theirs = tmp_path_factory.mktemp("ca-ours"), tmp_path_factory.mktemp("ca-theirs")
    for d in (ours, theirs):
        provision(d, parties=["bank", "insurer", "arbiter"], hosts=["localhost", "127.0.0.1"])
    return ours, theirs


def test_control_plane_wrong_ca_and_swapped_ports(two_cas: tuple[Path, Path]) -> None:
    ours, theirs = two_cas
    server = ControlServer("127.0.0.1:0", TlsConfig.from_dir(theirs, "bank"), lambda p: {}, "arbiter").start()
    node = PartyNode("bank", "127.0.0.1:0", TlsConfig.from_dir(ours, "bank")).start()
    try:
        address = f"127.0.0.1:{server.port}"
        with pytest.raises(ControlError, match=rf"TLS handshake with 'bank' at {address} failed: .*CA") as err:
            ControlClient("bank", address, TlsConfig.from_dir(ours, "arbiter")).call("check", timeout=10)
        assert "not reachable" not in str(err.value)
        data_plane = node.address
        with pytest.raises(ControlError, match=rf"the service at {data_plane} is not a control plane"):
            ControlClient("bank", data_plane, TlsConfig.from_dir(ours, "arbiter")).call("check", timeout=10)
    finally:
        server.stop(0)
        node.stop(0)


def test_data_plane_probe_names_the_cause(two_cas: tuple[Path, Path]) -> None:
    ours, theirs = two_cas
    insurer = PartyNode("insurer", "127.0.0.1:0", TlsConfig.from_dir(ours, "insurer")).start()
    foreign = PartyNode("insurer", "127.0.0.1:0", TlsConfig.from_dir(theirs, "insurer")).start()
    control = ControlServer("127.0.0.1:0", TlsConfig.from_dir(ours, "insurer"), lambda p: {}, "arbiter").start()
    bank = PartyNode("bank", "127.0.0.1:0", TlsConfig.from_dir(ours, "bank"), {"insurer": insurer.address})
    try:
        assert bank.probe("insurer") is None  # the right address: verified both ways
        bank.add_peer("insurer", foreign.address)
        problem = bank.probe("insurer")
        assert problem is not None and f"TLS handshake with 'insurer' at {foreign.address} failed" in problem
        assert "CA" in problem
        bank.add_peer("insurer", f"127.0.0.1:{control.port}")
        problem = bank.probe("insurer")
        assert problem is not None and f"the service at 127.0.0.1:{control.port} is not a data plane" in problem
        assert "no address for party 'nobody'" in str(bank.probe("nobody"))
    finally:
        for n in (insurer, foreign, bank):
            n.stop(0)
        control.stop(0)


class _SlowLink:
    """A TCP relay to ``target`` that holds the first bytes the server sends on each connection for ``delay``
    seconds (a long-haul link, or a lost packet TCP has to retransmit); ``delay=None`` never answers."""

    def __init__(self, target: int, delay: float | None) -> None:
        self.target, self.delay = target, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.delay is None:
                continue  # accept the TCP connection, then say nothing
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, server, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.delay), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(delay)
                delay = 0.0
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        self.listener.close()


def test_data_plane_probe_waits_for_a_slow_handshake(two_cas: tuple[Path, Path]) -> None:
    """A handshake that takes longer than a LAN's (here 0.6 s, as when TCP retransmits a lost SYN-ACK) still
    passes the link check; a peer that accepts but never answers is reported within the probe's deadline."""
    ours, _ = two_cas
    insurer = PartyNode("insurer", "127.0.0.1:0", TlsConfig.from_dir(ours, "insurer")).start()
    slow, silent = _SlowLink(insurer.port, 0.6), _SlowLink(insurer.port, None)
    bank = PartyNode("bank", "127.0.0.1:0", TlsConfig.from_dir(ours, "bank"), {"insurer": slow.address})
    try:
        assert bank.probe("insurer", timeout=5.0) is None
        bank.add_peer("insurer", silent.address)
        started = time.monotonic()
        problem = bank.probe("insurer", timeout=2.0)
        assert problem is not None and f"'insurer' at {silent.address} did not answer in time" in problem
        assert time.monotonic() - started < 4.0
    finally:
        for link in (slow, silent):
            link.close()
        for n in (insurer, bank):
            n.stop(0)
