"""How every client command reaches a backend: the options (endpoint, signing key, CURVE keys) and the client.

``add_connection_arguments`` declares ``--connect``, ``--key-file``,
``--server-key``, ``--client-key``; :class:`Connection` holds them (from
``argparse`` or built in code, e.g. by the demo); :func:`open_client` loads the
keys and returns a connected :class:`bridge.client.SyncClient`.
"""
from __future__ import annotations

from dataclasses import dataclass

from bridge.protocol import DEFAULT_ADDRESS


def add_connection_arguments(parser) -> None:
    """``--connect``, ``--key-file``, ``--server-key``, ``--client-key`` (read by :meth:`Connection.from_args`)."""
    parser.add_argument("--connect", default=DEFAULT_ADDRESS, metavar="ADDR",
                        help=f"backend endpoint (default {DEFAULT_ADDRESS})")
    parser.add_argument("--key-file", metavar="F", help="shared secret file, if the backend uses one")
    parser.add_argument("--server-key", metavar="F",
                        help="the backend's CURVE public key (server.key from `emogene keys`): encrypts the traffic")
    parser.add_argument("--client-key", metavar="F",
                        help="this client's CURVE secret certificate (NAME.key_secret from `emogene keys --client "
                             "NAME`), for a backend that only admits listed clients")


@dataclass(frozen=True)
class Connection:
    """Where the backend is and the key files to reach it with (None: not used)."""
    connect: str = DEFAULT_ADDRESS
    key_file: str | None = None
    server_key: str | None = None
    client_key: str | None = None

    @classmethod
    def from_args(cls, args) -> "Connection":
        return cls(args.connect, getattr(args, "key_file", None), getattr(args, "server_key", None),
                   getattr(args, "client_key", None))

    def key(self) -> bytes | None:
        """The signing key from ``key_file`` (``KeyFileError``, a ValueError, when it is unusable)."""
        from bridge.client import load_key

        return load_key(self.key_file) if self.key_file else None

    def curve_options(self) -> dict:
        """SyncClient's CURVE arguments from the key files (empty without them); ValueError when unusable."""
        from bridge.client import load_curve_key, load_curve_pair

        options = {}
        if self.server_key:
            options["server_key"] = load_curve_key(self.server_key)
        if self.client_key:
            if "server_key" not in options:
                raise ValueError("--client-key needs --server-key (the backend's public key)")
            options["client_pair"] = load_curve_pair(self.client_key)
        return options


def open_client(connection: Connection, timeout_s: float):
    """A :class:`bridge.client.SyncClient` for ``connection``; ValueError (bad key files, address) first."""
    from bridge.client import SyncClient

    key, curve = connection.key(), connection.curve_options()
    return SyncClient(connection.connect, key=key, timeout_s=timeout_s, **curve)
