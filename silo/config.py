"""Silo configuration (``bank.toml``, ``insurer.toml``): who the party is, where it listens, its TLS files,
its peers and its data source.

Example::

    [party]
    id = "bank"
    role = "guest"                 # a role of the job's algorithm: guest (holds labels) or host for the vertical ones
    listen = "127.0.0.1:50061"     # data plane (protocol messages from peers)
    control = "127.0.0.1:50071"    # control plane (stage requests from the arbiter)
    arbiter = "arbiter"            # the only party allowed to send control requests
    store = "bank-store.sqlite"    # local model parts and checkpoints (relative to this file)
    exports = "exports"            # guest: where `fedrisk evaluate --export-scores` may write (id, score) CSVs

    [tls]
    ca = "certs/ca.pem"
    cert = "certs/bank.pem"
    key = "certs/bank.key"

    [peers]
    arbiter = "127.0.0.1:50060"
    insurer = "127.0.0.1:50062"

    [data]
    source = "csv"                 # csv | parquet | sql
    path = "bank.csv"              # csv / parquet
    # url = "sqlite:///bank.db"    # sql (SQLAlchemy URL; a bare path means SQLite)
    # table = "customers"
    id_column = "id"
    label_column = "y"             # guest only
    # features = ["x0", "x1"]      # default: every other column
    # categorical = ["region"]     # default: non-numeric columns

    [compute]                      # optional: where the heavy loops run (see silo/compute.py)
    executor = "process"           # or "dask" with scheduler = "tls://host:8786" or workers = N

    [psi]
    min_intersection = 100         # this silo's floor: it refuses smaller intersections whatever the job says

    [data.oot]                     # optional named sources, e.g. a later month for out-of-time evaluation
    path = "bank-2025q3.csv"       # inherits source kind, id/label/feature keys from [data] unless given

    [consent]                      # optional: what this silo allows its peers to see (default: nothing)
    share_feature_names = false    # e.g. a host naming its characteristics to the bank
    share_points_table = false     # e.g. a host showing its points table to the bank (flags: the plug-ins' `consents`)

Relative paths are resolved against the config file's directory. Errors name the file and the key.

What it reveals to whom: nothing; this is local configuration.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from algorithms import catalogue
from algorithms.api import nearest
from federation.certs import TlsConfig
from silo.compute import ComputeConfig, ComputeConfigError, parse_compute
from silo.config_keys import strict_keys, subtables, tracked


class ConfigError(ValueError):
    """A configuration file is missing, malformed, or names files that do not exist."""


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    cert: Path
    key: Path

    def check(self, where: str) -> None:
        for name in ("ca", "cert", "key"):
            path: Path = getattr(self, name)
            if not path.is_file():
                raise ConfigError(f"{where}: TLS file tls.{name} = {str(path)!r} does not exist")

    def load(self) -> TlsConfig:
        """The party's TLS material (CA, certificate, private key) for the transport and control planes."""
        return TlsConfig(self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes())


@dataclass(frozen=True)
class DataSource:
    source: str
    path: Path | None = None
    url: str | None = None
    table: str | None = None
    id_column: str = "id"
    label_column: str | None = None
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SiloConfig:
    party_id: str
    role: str
    listen: str
    control: str
    arbiter: str
    store: Path
    tls: TLSFiles
    peers: dict[str, str]
    data: DataSource
    source_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    exports: Path | None = None
    compute: ComputeConfig = field(default_factory=ComputeConfig)  # [compute]: process pool or Dask
    psi_floor: int = 100  # [psi] min_intersection: the smallest intersection this silo accepts (a job cannot lower it)
    consent: dict[str, bool] = field(default_factory=dict)
    #: named data sources (``[data.NAME]``, e.g. an out-of-time sample for ``fedrisk evaluate --source NAME``)
    sources: dict[str, DataSource] = field(default_factory=dict)


def _require(table: dict[str, Any], key: str, where: str, section: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}: missing {section}.{key}")
    return table[key]


def resolve(base: Path, value: str | Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        with path.open("rb") as f:
            return tracked(tomllib.load(f))  # loaders refuse keys they never ask for (refuse_unknown_keys)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def parse_tls(raw: dict[str, Any], base: Path, where: str) -> TLSFiles:
    tls = raw.get("tls")
    if not isinstance(tls, dict):
        raise ConfigError(f"{where}: missing [tls] section (ca, cert, key)")
    files = TLSFiles(*(resolve(base, _require(tls, k, where, "tls")) for k in ("ca", "cert", "key")))
    files.check(where)
    return files


def load_silo_config(path: str | Path) -> SiloConfig:
    """Parse and check a silo config; raises :class:`ConfigError` naming the problem."""
    path = Path(path).resolve()
    raw = load_toml(path)
    where = str(path)
    with strict_keys(raw, where, ConfigError):
        base = path.parent
        party = raw.get("party")
        if not isinstance(party, dict):
            raise ConfigError(f"{where}: missing [party] section")
        party_id = str(_require(party, "id", where, "party"))
        role = str(party.get("role", "guest"))
        known = catalogue.silo_roles()
        if role not in known:
            raise ConfigError(f"{where}: party.role must be {' or '.join(repr(r) for r in known)}, not {role!r}"
                              f"{nearest(role, known)}")
        data = raw.get("data")
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: missing [data] section")
        main = parse_source(data, base, where, "data", None)
        label = main.label_column
        if known[role] and not label:
            raise ConfigError(f"{where}: the {role} needs data.label_column")
        if not known[role] and label:
            raise ConfigError(f"{where}: a {role} holds no labels; remove data.label_column")
        try:
            compute = parse_compute(raw, base, where)
        except ComputeConfigError as exc:
            raise ConfigError(str(exc)) from exc
        psi = raw.get("psi", {})
        floor = psi.get("min_intersection", 100) if isinstance(psi, dict) else None
        if not isinstance(floor, int) or isinstance(floor, bool) or floor < 1:
            raise ConfigError(f"{where}: psi.min_intersection must be a positive integer, not {floor!r}")
        sources = {str(name): parse_source(table, base, where, f"data.{name}", main)
                   for name, table in subtables(data)}
        consent = parse_consent(raw.get("consent", {}), where)
        return SiloConfig(
            party_id=party_id, role=role, listen=str(_require(party, "listen", where, "party")),
            control=str(_require(party, "control", where, "party")), arbiter=str(party.get("arbiter", "arbiter")),
            store=resolve(base, party.get("store", f"{party_id}-store.sqlite")),
            exports=resolve(base, party.get("exports", "exports")),
            tls=parse_tls(raw, base, where),
            peers={str(k): str(v) for k, v in raw.get("peers", {}).items()},
            data=main, source_file=path, consent=consent, sources=sources, compute=compute, psi_floor=floor,
        )


def parse_source(data: dict[str, Any], base: Path, where: str, section: str, defaults: DataSource | None
                 ) -> DataSource:
    """One data source table (``[data]`` or a named ``[data.NAME]``, which inherits the id/label/feature keys
    and the source kind of ``[data]``)."""
    source = str(data.get("source", defaults.source if defaults else "csv")).lower()
    if source not in ("csv", "parquet", "sql"):
        raise ConfigError(f"{where}: {section}.source must be csv, parquet or sql, not {source!r}")
    ds_path = url = table = None
    if source in ("csv", "parquet"):
        ds_path = resolve(base, _require(data, "path", where, section))
        if not (ds_path.is_file() or (source == "parquet" and ds_path.is_dir())):  # a Parquet dataset: a folder
            raise ConfigError(f"{where}: {section}.path = {str(ds_path)!r} does not exist")
    else:
        url = str(_require(data, "url", where, section))
        if "://" not in url:  # a bare path means an embedded SQLite file
            url = f"sqlite:///{resolve(base, url)}"
        table = str(_require(data, "table", where, section))

    def pick(key: str, default: Any) -> Any:
        return data[key] if key in data else (getattr(defaults, key) if defaults is not None else default)

    features, categorical = pick("features", None), pick("categorical", None)
    return DataSource(source=source, path=ds_path, url=url, table=table, id_column=str(pick("id_column", "id")),
                      label_column=pick("label_column", None),
                      features=tuple(features) if features is not None else None,
                      categorical=tuple(categorical) if categorical is not None else None)


def parse_consent(table: Any, where: str) -> dict[str, bool]:
    """The ``[consent]`` flags: booleans, each one a plug-in reads (unknown keys name the nearest valid one)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [consent] must be a table of true/false flags")
    valid = catalogue.consent_keys()
    for key, value in table.items():
        if key not in valid:
            raise ConfigError(f"{where}: unknown consent.{key}{nearest(key, valid)}; valid: {', '.join(valid)}")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: consent.{key} must be true or false, not {value!r}")
    return {str(k): bool(v) for k, v in table.items()}
