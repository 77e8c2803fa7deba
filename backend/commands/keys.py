"""Make the CURVE key pair that encrypts the bridge: DIR/server.key (public: give it to clients,
`--server-key`, the add-on's preferences) and DIR/server.key_secret (secret: only for
`emogene serve --curve-secret`). CURVE encrypts and authenticates the server; keep using
--key-file (message signatures) as well to authenticate clients."""
from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for server.key and server.key_secret")
    parser.add_argument("--client", metavar="NAME",
                        help="make a client pair NAME.key / NAME.key_secret instead (for serve --curve-clients "
                             "and the client's --client-key)")
    parser.add_argument("--force", action="store_true", help="overwrite existing key files")


def run(args) -> int:
    import os
    from pathlib import Path

    import zmq
    import zmq.auth

    if not zmq.has("curve"):
        print("emogene keys: this pyzmq/libzmq has no CURVE support", file=sys.stderr)
        return 1
    out = Path(args.out)
    name = args.client or "server"
    if not name.replace("-", "").replace("_", "").isalnum():
        print(f"emogene keys: --client {name!r}: use letters, digits, - and _", file=sys.stderr)
        return 2
    public, secret = out / f"{name}.key", out / f"{name}.key_secret"
    if (public.exists() or secret.exists()) and not args.force:
        print(f"emogene keys: {public} or {secret} exists; --force overwrites", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in (public, secret):
        path.unlink(missing_ok=True)
    old_umask = os.umask(0o077)
    try:
        zmq.auth.create_certificates(str(out), name)
    finally:
        os.umask(old_umask)
    os.chmod(secret, 0o600)
    os.chmod(public, 0o644)
    if args.client:
        print(f"public key (copy into the backend's --curve-clients folder): {public}\n"
              f"secret key (for this client's --client-key): {secret}")
    else:
        print(f"public key (for clients' --server-key): {public}\n"
              f"secret key (for emogene serve --curve-secret): {secret}")
    return 0
