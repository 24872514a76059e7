"""The ``fedrisk`` command line (the top layer: it imports the silo and the arbiter; nothing imports it).

    fedrisk certs --out certs [--parties bank insurer arbiter] [--host bank=bank.internal ...] [--hosts localhost]
    fedrisk silo serve --config bank.toml
    fedrisk arbiter run job.toml [--config arbiter.toml]
    fedrisk arbiter resume JOB [--config arbiter.toml]
    fedrisk arbiter status [JOB] [--config arbiter.toml]
    fedrisk arbiter submit job.toml [--config arbiter.toml]           (queue a job for `arbiter serve`)
    fedrisk arbiter serve [--config arbiter.toml] [--concurrent-jobs N] [--until-idle]
    fedrisk health [--config party.toml]                              (probe: exit 0 = serving; $FEDRISK_CONFIG)
    fedrisk models list [--config arbiter.toml]
    fedrisk models show ID [--config arbiter.toml]
    fedrisk models export ID --config bank.toml --out guest_model.json     (at the guest, on its own store)
    fedrisk evaluate ID [--config arbiter.toml] [--threshold 0.5] [--export-scores scores.csv] [--reports DIR]
                     [--source NAME]
    fedrisk demo [--workdir DIR] [--epochs N] [--dataset breast] [--algorithm NAME]  (a catalogued name)

Expected errors (bad configs, bad data, unreachable silos, invalid transitions) print one clear line
``fedrisk: error: ...`` and exit with status 2; nothing is left half-written.

What it reveals to whom: the commands print only what the running party may see (its own logs; the
arbiter's job store: states, aggregate metrics, hashes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from algorithms import catalogue


def _arbiter_config_path(args: argparse.Namespace, job_file: str | None = None) -> Path:
    if args.config:
        return Path(args.config)
    if job_file is not None:
        return Path(job_file).resolve().parent / "arbiter.toml"
    return Path("arbiter.toml")


@contextmanager
def _job_store(args: argparse.Namespace) -> Iterator[Any]:
    """The arbiter's job store named by ``--store`` or by the arbiter config; closed on exit."""
    from arbiter.config import load_arbiter_config
    from arbiter.store import JobStore

    store = JobStore(getattr(args, "store", None) or load_arbiter_config(_arbiter_config_path(args)).store)
    try:
        yield store
    finally:
        store.close()


# ------------------------------------------------------------------------------------------------ certs
def cmd_certs(args: argparse.Namespace) -> int:
    from federation.certs import CertificateError, provision

    party_hosts: dict[str, list[str]] = {}
    for spec in args.host or []:
        party, sep, names = spec.partition("=")
        if not sep or not party or not names:
            raise CertificateError(f"--host expects PARTY=NAME[,NAME...], got {spec!r}")
        party_hosts.setdefault(party, []).extend(n for n in names.split(",") if n)
    paths = provision(args.out, parties=args.parties, hosts=args.hosts, days=args.days, overwrite=args.overwrite,
                      party_hosts=party_hosts)
    for name, path in paths.items():
        print(f"{name:>16}  {path}")
    return 0


# ------------------------------------------------------------------------------------------------- silo
def cmd_silo_serve(args: argparse.Namespace) -> int:
    from silo.config import load_silo_config
    from silo.logs import configure_logging
    from silo.service import SiloService

    config = load_silo_config(args.config)
    configure_logging(config.party_id, as_json=args.json_logs, log_file=args.log_file)
    service = SiloService(config).start()
    if args.ready_file:
        Path(args.ready_file).write_text(f"{service.node.address}\n")
    service.serve_forever()
    return 0


# ---------------------------------------------------------------------------------------------- arbiter
def _print_result(result: dict[str, Any]) -> None:
    metrics = result.get("metrics", {})
    full = result.get("full_metrics")
    if full:
        from arbiter.report import summary_table

        print(summary_table(full))
    if result.get("model_id") is None:  # an analysis job (nothing to score): its report is the result
        print(f"job {result.get('job_id', '')} done: no model to register; the report holds the result")
    else:
        print(f"job {result.get('job_id', '')} done: model {result.get('model_id')} "
              f"(sha256 {str(result.get('content_hash', ''))[:16]})")
        print(f"AUC = {metrics.get('auc', float('nan')):.4f}")
        print(f"KS  = {metrics.get('ks', float('nan')):.4f}")
    for path in result.get("report", []):
        print(f"report: {path}")
    for warning in result.get("warnings", []):
        print(f"WARNING: {warning}", file=sys.stderr)


def _sigterm_as_interrupt() -> None:
    """SIGTERM behaves like Ctrl-C: the running job is marked failed and aborted at the silos."""
    import signal

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _arbiter_session(args: argparse.Namespace, config: Any, action: Any) -> int:
    """Run ``action(service)`` on an arbiter service (logging, Ctrl-C handling, clean close), print the result."""
    from arbiter.runner import ArbiterService
    from silo.logs import configure_logging

    configure_logging(config.party_id, as_json=args.json_logs, log_file=args.log_file)
    service = ArbiterService(config, progress=not args.no_progress)
    _sigterm_as_interrupt()
    try:
        result = action(service)
    finally:
        service.close()
    _print_result(result)
    return 0


def cmd_arbiter_run(args: argparse.Namespace) -> int:
    from arbiter.config import load_arbiter_config, load_job_config

    config = load_arbiter_config(_arbiter_config_path(args, args.job))
    job = load_job_config(args.job, arbiter_id=config.party_id)

    def submit_and_run(service: Any) -> dict[str, Any]:
        record = service.submit(job)
        return {**service.run(record.id), "job_id": record.id}

    return _arbiter_session(args, config, submit_and_run)


def cmd_arbiter_resume(args: argparse.Namespace) -> int:
    from arbiter.config import load_arbiter_config

    config = load_arbiter_config(_arbiter_config_path(args))
    return _arbiter_session(args, config, lambda service: {**service.resume(args.job_id), "job_id": args.job_id})


def cmd_arbiter_submit(args: argparse.Namespace) -> int:
    from arbiter.config import load_arbiter_config, load_job_config
    from arbiter.runner import ArbiterService

    config = load_arbiter_config(_arbiter_config_path(args, args.job))
    job = load_job_config(args.job, arbiter_id=config.party_id)
    service = ArbiterService(config, progress=False)
    try:
        record = service.submit(job)
    finally:
        service.close()
    print(f"job {record.id} queued")
    return 0


def cmd_arbiter_serve(args: argparse.Namespace) -> int:
    import threading

    from arbiter.config import load_arbiter_config
    from arbiter.queue import JobQueue
    from arbiter.runner import ArbiterService
    from silo.logs import configure_logging

    config = load_arbiter_config(_arbiter_config_path(args))
    configure_logging(config.party_id, as_json=args.json_logs, log_file=args.log_file)
    service = ArbiterService(config, progress=False)
    stopped = threading.Event()
    _sigterm_as_interrupt()
    queue = JobQueue(service, concurrency=args.concurrent_jobs or config.concurrent_jobs)
    try:
        queue.start()
        if args.ready_file:
            Path(args.ready_file).write_text(f"{service.config.listen}\n")
        while not stopped.wait(0.5):
            if args.until_idle and queue.wait_idle(0.1):
                break
    finally:
        queue.stop()
        if not queue.running():  # jobs still running stay in their stage: the next `serve` resumes them
            service.close()
    failed = [job_id for job_id, outcome in queue.results.items() if isinstance(outcome, BaseException)]
    for job_id, outcome in queue.results.items():
        print(f"job {job_id}: " + (f"failed: {outcome}" if isinstance(outcome, BaseException)
                                   else f"done, model {outcome.get('model_id')}"))
    return 1 if failed else 0


def cmd_health(args: argparse.Namespace) -> int:
    import os

    from arbiter.health import check

    path = args.config or os.environ.get("FEDRISK_CONFIG")
    if not path:
        print("fedrisk: error: give --config or set FEDRISK_CONFIG", file=sys.stderr)
        return 2
    health = check(path, timeout=args.timeout, data_plane=not args.store_only)
    print(health.line(), file=sys.stdout if health.ok else sys.stderr)
    return 0 if health.ok else 1


def cmd_arbiter_status(args: argparse.Namespace) -> int:
    with _job_store(args) as store:
        jobs = [store.job(args.job_id)] if args.job_id else store.jobs()
        for job in jobs:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(job.updated_at))
            line = f"{job.id:<32} {job.algorithm:<12} {job.state:<10} attempt={job.attempt} updated={when}"
            if job.error:
                line += f" stage={job.stage} error={job.error}"
            print(line)
            if args.job_id:
                for e in store.events(job.id):
                    note = e["note"] or ""
                    print(f"  {e['from_state'] or '-':>10} -> {e['to_state']:<10} attempt={e['attempt']} {note}")
                for party, step, digest in store.checkpoints(job.id):
                    print(f"  checkpoint {party:<10} step={step} sha256={digest[:16]}")
        if not jobs:
            print("no jobs")
    return 0


# ----------------------------------------------------------------------------------------------- models
def cmd_models_list(args: argparse.Namespace) -> int:
    with _job_store(args) as store:
        models = store.models()
        if not models:
            print("no models")
        for m in models:
            metrics = " ".join(f"{k}={v:.4f}" for k, v in m.metrics.items() if isinstance(v, float))
            line = f"{m.id:<28} {m.algorithm:<12} job={m.job_id:<32} {metrics} sha256={m.content_hash[:16]}"
            latest = store.latest_evaluation(m.id)
            if latest is not None:
                shown = " ".join(f"{k}={latest.headline[k]:.4f}" for k in ("auc", "ks", "psi")
                                 if isinstance(latest.headline.get(k), float))
                line += f" | evaluation #{latest.seq} {shown} threshold={latest.threshold:g}"
            print(line)
    return 0


def cmd_models_show(args: argparse.Namespace) -> int:
    with _job_store(args) as store:
        m = store.model(args.model_id)

        def when(t: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

        evaluations = [{"evaluation": e.seq, "at": when(e.created_at), "job_id": e.job_id, "rows": e.rows,
                        "threshold": e.threshold, "metrics": e.headline, "reports": e.reports,
                        "schema_digests": e.schema_digests} for e in store.evaluations(m.id)]
        print(json.dumps({"id": m.id, "name": m.name, "version": m.version, "job_id": m.job_id,
                          "algorithm": m.algorithm, "params": m.params, "metrics": m.metrics,
                          "latest_evaluation": evaluations[-1] if evaluations else None,
                          "evaluations": evaluations, "content_hash": m.content_hash, "model": m.model,
                          "created_at": when(m.created_at)}, indent=2))
    return 0


def cmd_models_export(args: argparse.Namespace) -> int:
    from silo.config import load_silo_config
    from silo.export import export_files, export_guest_model
    from silo.store import SiloStore

    config = load_silo_config(args.config)
    store = SiloStore(config.store)
    try:
        extras = export_files(store, args.model_id, args.out, role=config.role)  # e.g. a points table
        for extra in extras:
            print(f"wrote {extra}")
        if config.role != "guest" and extras:  # a host exports only what its plug-in offers it
            return 0
        path = export_guest_model(store, args.model_id, args.out, party_id=config.party_id, role=config.role)
    except ValueError as exc:
        print(f"fedrisk: error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"exported {config.party_id}'s part of model {args.model_id} to {path}")
    return 0


# --------------------------------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from arbiter.config import load_arbiter_config
    from arbiter.evaluate import evaluate_model
    from arbiter.report import summary_table
    from silo.logs import configure_logging

    config = load_arbiter_config(_arbiter_config_path(args))
    configure_logging(config.party_id, as_json=args.json_logs, log_file=args.log_file)
    result = evaluate_model(config, args.model_id, threshold=args.threshold, export_scores=args.export_scores,
                            reports_dir=args.reports, source=args.source)
    print(summary_table(result["full_metrics"]))
    print(f"model {result['model_id']} (sha256 {result['content_hash'][:16]}): evaluation #{result['evaluation']} "
          f"on {result['evaluation_rows']} held-out rows of job {result['job_id']}")
    if result.get("exported"):
        paths = result["exported"] if isinstance(result["exported"], list) else [result["exported"]]
        for party, path in zip(result.get("exported_by") or ["the guest"] * len(paths), paths, strict=False):
            print(f"scores: {party} wrote id,score of the {result.get('evaluation_rows')} held-out rows to {path} "
                  f"inside its export folder (party.exports in its config; its log names the full path)")
    oot = result["full_metrics"].get("out_of_time")
    if oot:
        m = oot["metrics"]
        print(f"out-of-time sample {oot['source']!r}: {oot['rows']} rows, AUC {m['auc']:.4f} "
              f"{m.get('ci', {}).get('auc')}, KS {m['ks']:.4f}, score PSI vs training {m.get('psi')}")
    for path in result["report"]:
        print(f"report: {path}")
    return 0


# ------------------------------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from arbiter.demo import run_demo

    return run_demo(workdir=args.workdir, epochs=args.epochs, dataset=args.dataset, keep=args.keep,
                    algorithm=args.algorithm)


# ------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedrisk", description="Cross-silo federated risk models")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("certs", help="provision a private CA and one certificate per party")
    p.add_argument("--out", default="certs")
    p.add_argument("--parties", nargs="+", default=["bank", "insurer", "arbiter"])
    p.add_argument("--host", action="append", metavar="PARTY=NAME[,NAME...]",
                   help="host names / IP addresses of one party's certificate only (repeat per party)")
    p.add_argument("--hosts", nargs="*", default=["localhost", "127.0.0.1"], metavar="NAME",
                   help="names put into EVERY certificate (default: localhost 127.0.0.1; '--hosts' alone: none)")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--overwrite", action="store_true", help="replace an existing CA")
    p.set_defaults(func=cmd_certs)

    silo = sub.add_parser("silo", help="run a silo").add_subparsers(dest="silo_command", required=True)
    p = silo.add_parser("serve", help="serve jobs for the arbiter")
    p.add_argument("--config", required=True)
    p.add_argument("--json-logs", action="store_true", help="JSON log lines instead of key=value")
    p.add_argument("--log-file", help="write logs to this file instead of stderr")
    p.add_argument("--ready-file", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_silo_serve)

    arb = sub.add_parser("arbiter", help="run and inspect jobs").add_subparsers(dest="arbiter_command", required=True)
    p = arb.add_parser("run", help="check the silos, then run a job to completion")
    p.add_argument("job", help="job.toml")
    p.add_argument("--config", help="arbiter.toml (default: next to the job file)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json-logs", action="store_true", help="JSON log lines instead of key=value")
    p.add_argument("--log-file", help="write logs to this file instead of stderr")
    p.set_defaults(func=cmd_arbiter_run)
    p = arb.add_parser("resume", help="continue a failed job from its last checkpoint")
    p.add_argument("job_id")
    p.add_argument("--config", help="arbiter.toml (default: ./arbiter.toml)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json-logs", action="store_true", help="JSON log lines instead of key=value")
    p.add_argument("--log-file", help="write logs to this file instead of stderr")
    p.set_defaults(func=cmd_arbiter_resume)
    p = arb.add_parser("submit", help="check the silos, then queue a job for `fedrisk arbiter serve`")
    p.add_argument("job", help="job.toml")
    p.add_argument("--config", help="arbiter.toml (default: next to the job file)")
    p.set_defaults(func=cmd_arbiter_submit)
    p = arb.add_parser("serve", help="run queued jobs (and jobs a previous arbiter left running) until stopped")
    p.add_argument("--config", help="arbiter.toml (default: ./arbiter.toml)")
    p.add_argument("--concurrent-jobs", type=int, help="jobs run at once (default: queue.concurrent_jobs or 1)")
    p.add_argument("--until-idle", action="store_true", help="exit once no job is queued or running")
    p.add_argument("--json-logs", action="store_true", help="JSON log lines instead of key=value")
    p.add_argument("--log-file", help="write logs to this file instead of stderr")
    p.add_argument("--ready-file", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_arbiter_serve)
    p = arb.add_parser("status", help="jobs and their states")
    p.add_argument("job_id", nargs="?")
    p.add_argument("--config", help="arbiter.toml (default: ./arbiter.toml)")
    p.set_defaults(func=cmd_arbiter_status)

    models = sub.add_parser("models", help="model registry").add_subparsers(dest="models_command", required=True)
    for name, func in (("list", cmd_models_list), ("show", cmd_models_show)):
        p = models.add_parser(name)
        if name == "show":
            p.add_argument("model_id", help="model id (name-vN), name (latest version) or job id")
        p.add_argument("--config", help="arbiter.toml (default: ./arbiter.toml)")
        p.add_argument("--store", help="job store path or SQLAlchemy URL (instead of --config)")
        p.set_defaults(func=func)

    p = models.add_parser("export", help="write the guest's part of a model to JSON (run at the guest)")
    p.add_argument("model_id", help="model id (name-vN) or job id")
    p.add_argument("--config", required=True, help="the guest silo's config (bank.toml)")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.set_defaults(func=cmd_models_export)

    p = sub.add_parser("evaluate", help="score a registered model on its held-out rows over the running silos")
    p.add_argument("model_id", help="model id (name-vN), name (latest version) or job id")
    p.add_argument("--config", help="arbiter.toml (default: ./arbiter.toml)")
    p.add_argument("--threshold", type=float, default=0.5, help="score >= threshold is predicted bad (default 0.5)")
    p.add_argument("--export-scores", metavar="PATH",
                   help="the GUEST writes id,score of the held-out rows to this CSV in its export folder")
    p.add_argument("--reports", help="report folder (default: the arbiter's reports folder)")
    p.add_argument("--source", metavar="NAME",
                   help="out-of-time evaluation on the data source NAME every silo declares ([data.NAME])")
    p.add_argument("--json-logs", action="store_true", help="JSON log lines instead of key=value")
    p.add_argument("--log-file", help="write logs to this file instead of stderr")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("health", help="probe the party of a config (exit 0 = serving): silo control plane or "
                                      "arbiter store + data plane")
    p.add_argument("--config", help="silo or arbiter config (default: $FEDRISK_CONFIG)")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--store-only", action="store_true", help="arbiter: check the job store only (no data plane)")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("demo", help="bank + insurer + arbiter as three local processes on the bundled data")
    p.add_argument("--workdir", default="demo-output")
    p.add_argument("--epochs", type=int, default=None, help="LR epochs / SecureBoost trees (default: 2 / 3)")
    p.add_argument("--algorithm", choices=catalogue.names(), default=catalogue.default_name())
    p.add_argument("--dataset", choices=["default_credit", "breast"], default="default_credit")
    p.add_argument("--keep", action="store_true", help="keep the work dir's previous stores")
    p.set_defaults(func=cmd_demo)
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import SQLAlchemyError

    from arbiter.runner import ArbiterError
    from arbiter.store import StoreError
    from federation.certs import CertificateError
    from silo.config import ConfigError
    from silo.control import ControlError
    from silo.data import DataError
    from silo.jobs import JobError

    return (ArbiterError, StoreError, CertificateError, ConfigError, ControlError, DataError, JobError,
            SQLAlchemyError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("fedrisk: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, _expected_errors()):
            print(f"fedrisk: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
