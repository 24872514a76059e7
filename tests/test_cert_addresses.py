"""IP addresses in party certificates: ``fedrisk certs`` writes them as IP SANs, a certificate listing
non-loopback addresses binds its party to them, and no certificate carries another party's id.
(The refusal over a real network is in tests/test_netns.py.)"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from arbiter.cli import main
from federation.certs import address_mismatch, bound_addresses, peer_ip, provision


def _sans(path: Path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(i) for i in san.get_values_for_type(x509.IPAddress)}


def test_cli_writes_ip_addresses_as_ip_sans(tmp_path: Path) -> None:
    assert main(["certs", "--out", str(tmp_path), "--parties", "bank", "arbiter",
                 "--hosts", "10.20.0.2", "fd00::2", "bank.example.internal"]) == 0
    dns, ips = _sans(tmp_path / "bank.pem")
    assert dns == {"bank", "bank.example.internal"} and ips == {"10.20.0.2", "fd00::2"}
    assert bound_addresses((tmp_path / "bank.pem").read_bytes()) == {ipaddress.ip_address("10.20.0.2"),
                                                                     ipaddress.ip_address("fd00::2")}


def test_no_certificate_names_another_party(tmp_path: Path) -> None:
    """With service names as hosts (compose, Kubernetes), the insurer's certificate must not say 'bank':
    clients pin a peer by its party id as TLS name, so that would let the insurer answer as the bank."""
    provision(tmp_path, parties=["bank", "insurer", "arbiter"], hosts=["bank", "insurer", "arbiter", "lb.internal"])
    for party in ("bank", "insurer", "arbiter"):
        dns, _ = _sans(tmp_path / f"{party}.pem")
        assert dns == {party, "lb.internal"}


def test_address_binding_rules(tmp_path: Path) -> None:
    provision(tmp_path / "bound", parties=["bank"], hosts=["10.20.0.2"])
    provision(tmp_path / "loop", parties=["bank"], hosts=["localhost", "127.0.0.1"])
    provision(tmp_path / "dns", parties=["bank"], hosts=["bank.internal"])
    bound = (tmp_path / "bound" / "bank.pem").read_bytes()
    assert address_mismatch("ipv4:10.20.0.2:41000", bound) is None
    assert address_mismatch("ipv6:%5B::ffff:10.20.0.2%5D:41000", bound) is None  # IPv4-mapped, URL-quoted
    assert address_mismatch("ipv4:127.0.0.1:41000", bound) is None  # same host / namespace
    refused = address_mismatch("ipv4:10.20.0.9:41000", bound)
    assert refused is not None and "10.20.0.9" in refused and "10.20.0.2" in refused
    for unbound in ("loop", "dns"):  # loopback-only and DNS-only certificates bind nothing
        assert address_mismatch("ipv4:10.20.0.9:41000", (tmp_path / unbound / "bank.pem").read_bytes()) is None
    assert address_mismatch("ipv4:10.20.0.9:41000", None) is None
    assert peer_ip("unix:/tmp/socket") is None and str(peer_ip("ipv6:[fd00::2]:5")) == "fd00::2"
