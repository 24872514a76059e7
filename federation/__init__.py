"""Transport for fedrisk: channels that carry named protocol messages between parties.

Protocol roles (in ``algorithms``) only see the :class:`~federation.channel.Channel` interface; the
in-memory implementation runs them in threads of one process, the gRPC implementation runs the same
classes across processes with mutual TLS.
"""
