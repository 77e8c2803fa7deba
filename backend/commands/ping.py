"""Check that a backend answers: prints its version, protocol, device, subjects and round-trip time."""
from __future__ import annotations

import sys

from backend.commands._connection import Connection, add_connection_arguments, open_client


def add_arguments(parser) -> None:
    add_connection_arguments(parser)
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds to wait (default 5)")
    parser.add_argument("--count", type=int, default=5, metavar="N", help="pings for the round-trip time (default 5)")


def run(args) -> int:
    import statistics

    from bridge.client import KeyFileError
    from bridge.errors import BridgeError

    try:
        client = open_client(Connection.from_args(args), args.timeout)
    except (KeyFileError, ValueError) as exc:
        print(f"emogene ping: {exc}", file=sys.stderr)
        return 2
    with client:
        try:
            welcome = client.hello().content
            times = [client.ping() for _ in range(max(1, args.count))]
        except BridgeError as exc:
            print(f"emogene ping: {exc}", file=sys.stderr)
            return 1
    caps = welcome.get("capabilities", {})
    print(f"backend   {args.connect}")
    print(f"version   {welcome.get('backend_version')}  (protocol {welcome.get('protocol')})")
    print(f"device    {welcome.get('device')}")
    print(f"motion    {caps.get('motion')}   plates: {'yes' if caps.get('plates') else 'no'}"
          f"   signed: {'yes' if caps.get('signed') else 'no'}   encrypted: {'yes' if welcome.get('encrypted') else 'no'}")
    print(f"subjects  {', '.join(welcome.get('subjects') or []) or '(none)'}")
    print(f"jobs      {welcome.get('queued', 0)} queued, running: {'yes' if welcome.get('running') else 'no'}"
          f"   instance {str(welcome.get('instance', '?'))[:8]}")
    print(f"round trip {statistics.median(times) * 1000:.2f} ms (median of {len(times)})")
    return 0
