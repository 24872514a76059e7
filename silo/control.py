"""Control plane between the arbiter and the silos: unary gRPC calls over mutual TLS.

The arbiter asks a silo to do something for a job (``check`` — with a model id also: the silo holds
its part of that model and its columns are unchanged —, ``align``, ``train``, ``evaluate`` (of the job's
model or a registered model id, at a threshold), ``name_model``, ``checkpoints``, ``abort``, ``close``,
``shutdown``); the request and the reply are :mod:`federation.codec`
payloads (never pickled). Long stages are long calls: a ``train`` call returns when the silo's role has
finished, so a silo that dies mid-job surfaces at once as ``UNAVAILABLE`` on the arbiter's side, and a silo
that stops gracefully answers its in-flight calls with a distinct "stopping" reply (:class:`SiloStopping`,
treated like a dead silo: wait and resume). Protocol
messages themselves travel on the data plane (:mod:`federation.grpc_transport`), not here.

The server accepts calls only from the configured arbiter: the caller's certificate common name (checked
by gRPC against the federation CA) must equal the arbiter's party id, and a caller whose certificate
lists IP addresses must connect from one of them (:func:`federation.certs.address_mismatch`). The one
exception is ``health``, which the silo's own identity may call too (container and Kubernetes probes run
``fedrisk health`` next to the silo with its own certificate); it is answered by the server itself and
reveals nothing beyond "serving". The client pins the silo by using its party id as the TLS target name.

What it reveals to whom: the arbiter sees what a silo replies: its party id, role, schema digest,
software version, row counts, checkpoint steps and digests, content hashes of its model part and the
guest's aggregate evaluation metrics. No rows, ids, features, labels or weights.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc

from federation import codec
from federation.certs import TlsConfig, address_mismatch, peer_common_name
from federation.grpc_transport import MISCONFIGURED_TLS, describe_failure

SERVICE = "fedrisk.control.Control"
METHOD = f"/{SERVICE}/Call"
_log = logging.getLogger("fedrisk.control")

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlError(RuntimeError):
    """The silo refused or failed a control request (the message is the silo's own error)."""


class SiloUnavailable(ControlError):
    """The silo could not be reached (down, wrong address, or TLS refused)."""


class SiloStopping(SiloUnavailable):
    """The silo is stopping gracefully (SIGTERM, Ctrl-C or ``shutdown``): its in-flight stage was cut short.
    The arbiter treats it like a silo that died: it waits for it (``silo_deadline``) and resumes from the
    checkpoint, instead of failing the job as for a stage error."""


def _identity(data: bytes) -> bytes:
    return data


class ControlServer:
    """A gRPC server exposing one silo's control handler to the arbiter."""

    def __init__(self, listen: str, tls: TlsConfig, handler: Handler, allowed_caller: str,
                 max_workers: int = 8) -> None:
        self._handler = handler
        self._allowed = allowed_caller
        self._self_id = tls.common_name  # may call ``health`` only
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="control"),
                                   options=[("grpc.max_receive_message_length", 64 << 20),
                                            ("grpc.max_send_message_length", 64 << 20),
                                            # the arbiter pings during long stage calls (see ControlClient)
                                            ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
                                            ("grpc.keepalive_permit_without_calls", 1),
                                            # never answer the arbiter's pings with GOAWAY "too_many_pings": under
                                            # load, transport pings bunch up and that killed in-flight stage calls
                                            ("grpc.http2.max_ping_strikes", 0)])
        rpc = grpc.unary_unary_rpc_method_handler(self._call, request_deserializer=_identity,
                                                  response_serializer=_identity)
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Call": rpc}),))
        self.port = self._server.add_secure_port(listen, tls.server_credentials())
        if self.port == 0:
            raise OSError(f"cannot listen on {listen}")
        self._stopped = threading.Event()

    def start(self) -> ControlServer:
        self._server.start()
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        self._server.stop(grace).wait()
        self._stopped.set()

    def wait(self) -> None:
        self._server.wait_for_termination()

    def _call(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        # exactly one CN in the peer certificate (gRPC itself reports only the first of several)
        auth = context.auth_context()
        caller = peer_common_name(auth)
        pems = auth.get("x509_pem_cert") or []
        mismatch = address_mismatch(context.peer(), pems[0] if len(pems) == 1 else None)
        if mismatch is not None:
            _log.warning("control call from %r refused: %s", caller, mismatch)
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{caller!r}: {mismatch}")
        if caller is not None and caller == self._self_id and caller != self._allowed:
            try:
                op = codec.decode(request).get("op")
            except Exception:
                op = None
            if op == "health":
                return codec.encode({"ok": True, "status": "serving", "party": self._self_id})
        if caller is None or caller != self._allowed:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"control calls are only accepted from {self._allowed!r} (a certificate with exactly "
                          f"one CN), not {caller or 'a certificate without exactly one CN'!r}")
        try:
            payload = codec.decode(request)
            if payload.get("op") == "health":
                return codec.encode({"ok": True, "status": "serving", "party": self._self_id})
            reply = self._handler(payload)
            return codec.encode({"ok": True, **reply})
        except SiloStopping as exc:  # going away: a distinct reply, so the arbiter waits and resumes
            _log.info("control request cut short: %s", exc)
            return codec.encode({"ok": False, "error": str(exc), "stopping": True})
        except Exception as exc:  # the arbiter gets the message, the silo keeps serving
            _log.warning("control request %s failed: %s", request[:0] or "", exc, exc_info=True)
            return codec.encode({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


class ControlClient:
    """The arbiter's handle on one silo's control server."""

    def __init__(self, party_id: str, address: str, tls: TlsConfig) -> None:
        self.party_id = party_id
        self.address = address
        self._channel = grpc.secure_channel(address, tls.channel_credentials(), options=[
            ("grpc.ssl_target_name_override", party_id),
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
            # a silo whose host vanishes (no TCP reset) surfaces as UNAVAILABLE within ~90 s
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ])
        self._call = self._channel.unary_unary(METHOD, request_serializer=_identity, response_deserializer=_identity)

    def call(self, op: str, timeout: float | None = 30.0, **fields: Any) -> dict[str, Any]:
        try:
            raw = self._call(codec.encode({"op": op, **fields}), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            detail = exc.details() if hasattr(exc, "details") else str(exc)
            if code == grpc.StatusCode.UNIMPLEMENTED or (code == grpc.StatusCode.UNAVAILABLE
                                                         and MISCONFIGURED_TLS.search(detail or "")):
                # a configuration error (swapped ports, wrong CA, another party's service): no point waiting
                cause = describe_failure(self.party_id, self.address, code, detail or "", plane="control")
                raise ControlError(f"{op!r} failed: {cause}") from exc
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
                raise SiloUnavailable(f"silo {self.party_id!r} at {self.address} unavailable during {op!r}: "
                                      f"{detail}") from exc
            raise ControlError(f"silo {self.party_id!r} at {self.address}: {op!r} failed: {detail}") from exc
        reply = codec.decode(raw)
        if not reply.pop("ok", False):
            if reply.get("stopping"):
                raise SiloStopping(f"silo {self.party_id!r} at {self.address} is stopping during {op!r}: "
                                   f"{reply.get('error')}")
            raise ControlError(f"silo {self.party_id!r}: {op!r} failed: {reply.get('error')}")
        return reply

    def close(self) -> None:
        self._channel.close()
