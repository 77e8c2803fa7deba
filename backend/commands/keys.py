"""Make the CURVE key pair that encrypts the bridge: DIR/server.key (public: give it to clients,
`--server-key`, the add-on's preferences) and DIR/server.key_secret (secret: only for
`emogene serve --curve-secret`). CURVE encrypts and authenticates the server; keep using
--key-file (HMAC) as well to authenticate clients."""
from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for server.key and server.key_secret")
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
    public, secret = out / "server.key", out / "server.key_secret"
    if (public.exists() or secret.exists()) and not args.force:
        print(f"emogene keys: {public} or {secret} exists; --force overwrites", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in (public, secret):
        path.unlink(missing_ok=True)
    old_umask = os.umask(0o077)
    try:
        zmq.auth.create_certificates(str(out), "server")
    finally:
        os.umask(old_umask)
    os.chmod(secret, 0o600)
    os.chmod(public, 0o644)
    print(f"public key (for clients): {public}\nsecret key (for emogene serve --curve-secret): {secret}")
    return 0
