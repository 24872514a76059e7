"""Deployment files, checked offline: Kubernetes manifests against the Kubernetes JSON schemas that
``kubernetes-validate`` ships (strict: unknown fields are errors), the compose file against the
compose-spec JSON schema that ``check-jsonschema`` vendors, the Dockerfile's shape, and that every file
implements exactly the port plan of deploy/README.md (NetworkPolicies allow those flows and no other,
compose exposes those ports and publishes none). ``fedrisk health`` is exercised against a live silo.
The image build itself needs a Docker engine (tests/test_deploy.py::test_image_builds, skipped without).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30.0"  # oldest Kubernetes release the manifests must work on

# The port plan (deploy/README.md): (from party, to party, port). Data planes: arbiter 50060, bank 50061,
# insurer 50062; control planes: bank 50071, insurer 50072 (arbiter only).
FLOWS = {
    ("arbiter", "bank", 50061), ("arbiter", "bank", 50071), ("insurer", "bank", 50061),
    ("arbiter", "insurer", 50062), ("arbiter", "insurer", 50072), ("bank", "insurer", 50062),
    ("bank", "arbiter", 50060), ("insurer", "arbiter", 50060),
}
LISTENS = {"bank": {50061, 50071}, "insurer": {50062, 50072}, "arbiter": {50060}}


def _k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and not str(doc.get("apiVersion", "")).startswith("kustomize.config.k8s.io"):
                docs.append((path.name, doc))
    return docs


def _party(labels: dict[str, str] | None) -> str | None:
    return (labels or {}).get("fedrisk/party")


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = _k8s_docs()
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in docs}
    for party in LISTENS:
        assert {("StatefulSet", party), ("Service", party), ("NetworkPolicy", party), ("ConfigMap", f"{party}-config"),
                ("Secret", f"{party}-tls")} <= kinds, f"{party}: missing objects"
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}") from exc
    # a broken manifest is caught (the validator is really checking)
    bad = json.loads(json.dumps(next(d for _, d in docs if d["kind"] == "StatefulSet")))
    bad["spec"]["template"]["spec"]["containers"][0]["resources"]["requets"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in (DEPLOY / "k8s").glob("*.yaml")
                                                       if p.name != "kustomization.yaml")


def test_statefulsets_are_hardened_and_persist_their_store() -> None:
    docs = [d for _, d in _k8s_docs()]
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    configs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for sts in (d for d in docs if d["kind"] == "StatefulSet"):
        party = sts["metadata"]["name"]
        pod = sts["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"][:2] == ["fedrisk", "health"], f"{party}: {probe}"
        assert {p["containerPort"] for p in container["ports"]} == LISTENS[party]
        claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert "state" in claims and mounts["state"] == "/var/lib/fedrisk/state"
        # the party's Secret holds exactly its own key material, mounted read-only
        tls = next(v for v in pod["volumes"] if v["name"] == "tls")["secret"]["secretName"]
        assert set(secrets[tls]["stringData"]) == {"ca.pem", f"{party}.pem", f"{party}-key.pem"}
        config = tomllib.loads(configs[f"{party}-config"]["data"]["party.toml"])
        assert config["party"]["id"] == party
        assert config["party"]["store"].startswith("/var/lib/fedrisk/state/")
        assert config["tls"]["key"] == f"/var/lib/fedrisk/certs/{party}-key.pem"
        ports = {int(config["party"][k].rsplit(":", 1)[1]) for k in ("listen", "control") if k in config["party"]}
        assert ports == LISTENS[party]


def _selector_party(peer: dict[str, Any]) -> str:
    party = _party(peer.get("podSelector", {}).get("matchLabels"))
    assert party is not None and "namespaceSelector" not in peer and "ipBlock" not in peer, peer
    return party


def test_network_policies_allow_exactly_the_port_plan() -> None:
    docs = [d for _, d in _k8s_docs() if d["kind"] == "NetworkPolicy"]
    deny = next(d for d in docs if d["metadata"]["name"] == "default-deny")
    assert deny["spec"]["podSelector"] == {} and set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress: set[tuple[str, str, int]] = set()
    egress: set[tuple[str, str, int]] = set()
    for policy in docs:
        me = _party(policy["spec"]["podSelector"].get("matchLabels"))
        if me is None:  # namespace-wide: default deny, DNS egress only
            assert "ingress" not in policy["spec"]
            for rule in policy["spec"].get("egress", []):
                assert {p["port"] for p in rule["ports"]} == {53}
            continue
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                ingress |= {(_selector_party(peer), me, p["port"]) for p in rule["ports"]}
        for rule in policy["spec"].get("egress", []):
            for peer in rule["to"]:
                egress |= {(me, _selector_party(peer), p["port"]) for p in rule["ports"]}
    assert ingress == FLOWS
    assert egress == FLOWS


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_validates_against_the_compose_specification() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from importlib.resources import files

    pytest.importorskip("check_jsonschema")
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    compose = _compose()
    errors = sorted(validator_cls(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    broken = json.loads(json.dumps(compose))
    broken["services"]["bank"]["restart"] = ["always"]
    assert list(validator_cls(schema).iter_errors(broken)), "the schema check catches a broken file"


def test_compose_services_follow_the_port_plan_and_keep_keys_apart() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"certs", *LISTENS}
    for name, svc in services.items():
        assert "ports" not in svc, f"{name} publishes ports on the host"
        assert svc.get("read_only") is True and svc.get("cap_drop") == ["ALL"]
        if name == "certs":
            assert svc["network_mode"] == "none" and svc["restart"] == "no"
            continue
        assert svc["user"].split(":")[0] != "0"
        assert {int(p) for p in svc["expose"]} == LISTENS[name]
        assert svc["depends_on"]["certs"]["condition"] == "service_completed_successfully"
        assert svc["environment"]["FEDRISK_CONFIG"] == f"/etc/fedrisk/{name}.toml"
        config = tomllib.loads((DEPLOY / "compose" / f"{name}.toml").read_text())
        ports = {int(config["party"][k].rsplit(":", 1)[1]) for k in ("listen", "control") if k in config["party"]}
        assert ports == LISTENS[name]
        for peer, address in config.get("peers", {}).items():
            host, port = address.rsplit(":", 1)
            assert host == peer and (name, peer, int(port)) in FLOWS
    mounts: dict[str, set[str]] = {}
    for name, svc in services.items():
        for volume in svc["volumes"]:
            mounts.setdefault(volume.split(":")[0], set()).add(name)
    assert mounts["pki"] == {"certs"}, "only the certificate job sees the CA key"
    for party in LISTENS:
        assert mounts[f"{party}-certs"] == {"certs", party}
        assert mounts[f"{party}-state"] == {party}
    assert services["arbiter"]["depends_on"]["bank"]["condition"] == "service_healthy"
    job = tomllib.loads((DEPLOY / "compose" / "job.toml").read_text())
    for party, entry in job["parties"].items():
        for key in ("address", "control"):
            host, port = entry[key].rsplit(":", 1)
            assert host == party and ("arbiter", party, int(port)) in FLOWS


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) >= 2, "multi-stage build"
    final = stages[-1]
    assert "slim" in re.search(r"ARG PYTHON_IMAGE=(\S+)", text).group(1)  # type: ignore[union-attr]
    assert "build-essential" in stages[0] and "apt-get" not in final, "no build tools in the final image"
    assert re.search(r"^USER 10001", final, flags=re.M)
    assert re.search(r'^HEALTHCHECK .*CMD \["fedrisk", "health"\]', final, flags=re.M)
    assert "COPY --from=build /opt/fedrisk /opt/fedrisk" in final
    assert "pip uninstall -y pip" in stages[0]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "**/certs", "**/*.sqlite"} <= set(ignored)


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _docker_engine(), reason="no Docker engine here (docker CLI without a daemon); "
                    "see deploy/README.md for the build command")
def test_image_builds() -> None:  # pragma: no cover - needs a Docker engine
    subprocess.run(["docker", "build", "-f", "deploy/Dockerfile", "-t", "fedrisk:test", "."], cwd=ROOT, check=True,
                   timeout=1800)
    out = subprocess.run(["docker", "run", "--rm", "fedrisk:test", "--help"], capture_output=True, text=True,
                         check=True)
    assert "fedrisk" in out.stdout
    user = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", "fedrisk:test", "-u"], capture_output=True,
                          text=True, check=True)
    assert user.stdout.strip() == "10001"


# ------------------------------------------------------------------------------------------ health probe
def test_health_probe_through_the_control_plane(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from arbiter.cli import main
    from arbiter.demo import Processes, prepare_workdir
    from federation.certs import TlsConfig
    from silo.control import ControlClient, ControlError
    from tests.test_services import start_silos

    root, paths = prepare_workdir(tmp_path, "breast", job_id="health")
    procs = Processes()
    try:
        assert main(["health", "--config", str(paths["bank"])]) == 1  # not started yet
        assert "bank: unhealthy" in capsys.readouterr().err
        start_silos(root, paths, procs, names=("bank",))
        assert main(["health", "--config", str(paths["bank"])]) == 0
        assert "bank: serving" in capsys.readouterr().out
        # the silo's own certificate may ask `health` and nothing else
        own = ControlClient("bank", paths["bank"].read_text().split('control = "')[1].split('"')[0],
                            TlsConfig.from_dir(root / "certs", "bank"))
        try:
            assert own.call("health")["status"] == "serving"
            with pytest.raises(ControlError, match="only accepted from 'arbiter'"):
                own.call("check")
        finally:
            own.close()
    finally:
        procs.stop_all()
    # the arbiter: the store answers; the data plane only while `arbiter serve` runs
    assert main(["health", "--config", str(paths["arbiter"]), "--store-only"]) == 0
    assert "job store sqlite ok" in capsys.readouterr().out
    assert main(["health", "--config", str(paths["arbiter"]), "--timeout", "1"]) == 1
    assert "data plane" in capsys.readouterr().err
