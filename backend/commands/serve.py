"""Run the backend: a ZeroMQ ROUTER that takes generate jobs from Blender or the CLI.

Binds to loopback by default. Binding anywhere else (e.g. tcp://0.0.0.0:5555 on a
GPU box) needs --key-file: every message is then signed (keyed BLAKE2b, see bridge/wire.py) and
unsigned or wrongly signed messages are refused. Job results are kept in
--jobs-dir until the client acknowledges them, so a client that loses its
connection can fetch them later. Stop with Ctrl-C (SIGINT) or SIGTERM.
"""
from __future__ import annotations

import sys

from backend.device import add_device_argument
from bridge.endpoints import is_loopback_endpoint
from bridge.protocol import DEFAULT_ADDRESS


def add_arguments(parser) -> None:
    parser.add_argument("--bind", default=DEFAULT_ADDRESS, metavar="ADDR",
                        help=f"ZeroMQ endpoint to listen on: tcp://HOST:PORT or ipc:///path (default {DEFAULT_ADDRESS})")
    parser.add_argument("--key-file", metavar="F", help="file holding the shared secret (>= 16 bytes) used to sign messages")
    parser.add_argument("--curve-secret", metavar="F",
                        help="CURVE secret key (server.key_secret from `emogene keys`): encrypts all traffic; "
                             "clients then need --server-key server.key")
    parser.add_argument("--curve-clients", metavar="DIR",
                        help="with --curve-secret: only clients whose public key (NAME.key from `emogene keys "
                             "--client NAME`) is in DIR may connect; others fail the handshake unread")
    add_device_argument(parser)
    parser.add_argument("--jobs-dir", metavar="D", default=None,
                        help="where job results wait until acknowledged (default ~/.cache/emogene/jobs)")
    parser.add_argument("--subjects-dir", metavar="D", action="append", default=None,
                        help="extra folder of subjects (searched first; may be given more than once)")
    from backend.runners.options import add_runner_arguments
    add_runner_arguments(parser)   # --runner in-process|ray, --ray-address, --workers ...


def run(args) -> int:
    import logging
    import signal
    from pathlib import Path

    from bridge.client import KeyFileError, load_key

    if not args.bind.startswith(("tcp://", "ipc://")):
        print(f"emogene serve: --bind {args.bind!r} must be tcp://HOST:PORT or ipc:///path", file=sys.stderr)
        return 2
    key = None
    if args.key_file:
        try:
            key = load_key(args.key_file)
        except KeyFileError as exc:
            print(f"emogene serve: {exc}", file=sys.stderr)
            return 2
    curve_secret = None
    if args.curve_secret:
        from bridge.client import CurveKeyError, load_curve_key
        try:
            curve_secret = load_curve_key(args.curve_secret, secret=True)
        except CurveKeyError as exc:
            print(f"emogene serve: {exc}", file=sys.stderr)
            return 2
    if args.curve_clients and not curve_secret:
        print("emogene serve: --curve-clients needs --curve-secret", file=sys.stderr)
        return 2
    if args.curve_clients and not Path(args.curve_clients).is_dir():
        print(f"emogene serve: --curve-clients {args.curve_clients} is not a folder", file=sys.stderr)
        return 2
    if key is None and not is_loopback_endpoint(args.bind):
        print(f"emogene serve: refusing to bind {args.bind} without --key-file: anyone who can reach it could "
              "use this machine's GPU and read results. Give a key file (the same one on the client), "
              "or bind tcp://127.0.0.1:PORT and tunnel (ssh -L).", file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from backend.composition import StageSet, StageUnavailableError
    from backend.device import resolve_device
    from backend.server import BackendServer, ServerConfig
    from backend.server.job_store import DEFAULT_JOBS_DIR
    from backend.subjects import SubjectStore

    try:   # with --runner ray the actors choose their own device; the front only validates requests
        device = resolve_device(args.device if args.runner == "in-process" else "cpu")
    except (RuntimeError, ValueError) as exc:
        print(f"emogene serve: {exc}", file=sys.stderr)
        return 2
    subjects = SubjectStore(args.subjects_dir)
    try:
        stage_set = StageSet(device=device, subjects=subjects)
    except StageUnavailableError as exc:
        print(f"emogene serve: {exc}", file=sys.stderr)
        return 2
    config = ServerConfig(bind=args.bind, key=key, curve_secret=curve_secret,
                          curve_clients=Path(args.curve_clients) if args.curve_clients else None, jobs_dir=Path(args.jobs_dir) if args.jobs_dir else DEFAULT_JOBS_DIR)
    from backend.runners.options import RunnerSetupError, make_runner
    try:
        runner = make_runner(args, stage_set, args.subjects_dir)
    except RunnerSetupError as exc:
        print(f"emogene serve: {exc}", file=sys.stderr)
        return 2
    device_name = str(device) if args.runner == "in-process" else f"ray ({args.device})"
    server = BackendServer(config, stage_set, subjects, device_name=device_name, runner=runner)

    def shut_down(signum, _frame):
        print(f"emogene serve: {signal.Signals(signum).name}, shutting down", file=sys.stderr, flush=True)
        server.request_stop()

    signal.signal(signal.SIGINT, shut_down)
    signal.signal(signal.SIGTERM, shut_down)

    def announce(address: str) -> None:
        plates = "yes" if stage_set.can_render else "no (landmarks only)"
        print(f"emogene backend listening on {address}  device={device_name}  motion={type(stage_set.motion).__name__}  "
              f"plates={plates}  signed={'yes' if key else 'no'}  encrypted={'yes' if curve_secret else 'no'}  "
              f"instance={server.instance[:8]}  jobs={server.store.root}  runner={runner.name}"
              f"{f'  workers={runner.status().workers}' if runner.name != 'in-process' else ''}", flush=True)

    try:
        server.serve_forever(on_bound=announce)
    except OSError as exc:
        print(f"emogene serve: {exc}", file=sys.stderr)
        return 1
    print("emogene serve: stopped", flush=True)
    return 0
