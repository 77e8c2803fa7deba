"""The options every client command shares to reach a backend: endpoint, HMAC key, CURVE keys."""
from __future__ import annotations

from bridge.protocol import DEFAULT_ADDRESS


def add_connection_arguments(parser) -> None:
    """``--connect``, ``--key-file``, ``--server-key``, ``--client-key`` (read by ``generate.curve_options``)."""
    parser.add_argument("--connect", default=DEFAULT_ADDRESS, metavar="ADDR",
                        help=f"backend endpoint (default {DEFAULT_ADDRESS})")
    parser.add_argument("--key-file", metavar="F", help="shared secret file, if the backend uses one")
    parser.add_argument("--server-key", metavar="F",
                        help="the backend's CURVE public key (server.key from `emogene keys`): encrypts the traffic")
    parser.add_argument("--client-key", metavar="F",
                        help="this client's CURVE secret certificate (NAME.key_secret from `emogene keys --client "
                             "NAME`), for a backend that only admits listed clients")
