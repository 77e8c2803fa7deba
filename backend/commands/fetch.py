"""Get the results of an earlier job (its id and token were printed by `emogene generate`) and write them
under --out as `emogene generate` would: landmarks.npz, landmarks.csv, plates/. The job is acknowledged
(deleted on the backend) once its results are written, unless --keep."""
from __future__ import annotations

import sys

from backend.commands._connection import add_connection_arguments


def add_arguments(parser) -> None:
    add_connection_arguments(parser)
    parser.add_argument("--job", required=True, metavar="ID", help="job id (printed by `emogene generate`)")
    parser.add_argument("--token", required=True, metavar="T", help="the job's token (printed with its id)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds without any answer before giving up (default 30)")
    parser.add_argument("--keep", action="store_true", help="leave the results on the backend (no ack)")


def run(args) -> int:
    from pathlib import Path

    from backend.commands.generate import curve_options, receive_job, write_landmarks
    from bridge.client import KeyFileError, SyncClient, load_key
    from bridge.errors import BridgeError

    out = Path(args.out)
    try:
        key = load_key(args.key_file) if args.key_file else None
        curve = curve_options(args)
    except (ValueError, KeyFileError) as exc:
        print(f"emogene fetch: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    with SyncClient(args.connect, key=key, timeout_s=args.timeout, **curve) as client:
        client.tokens[args.job] = args.token
        received = receive_job(client, args.job, client.fetch(args.job, args.token), "fetch", out)
        if isinstance(received, int):
            return received
        landmarks, rotation, translation, plates_dir, fps = received
        if landmarks is None:
            print(f"emogene fetch: job {args.job} ended without landmarks", file=sys.stderr)
            return 1
        # the emotion track is the client's own input: not part of the job's results
        write_landmarks(out, landmarks, rotation, translation, fps, None, None)
        if not args.keep:
            try:
                client.ack(args.job, args.token)
            except BridgeError as exc:
                print(f"emogene fetch: note: could not acknowledge job {args.job}: {exc}", file=sys.stderr)
    plates = len(list(plates_dir.glob("*.png"))) if plates_dir.is_dir() else 0
    print(f"wrote {len(landmarks)} frames of landmarks to {out / 'landmarks.npz'} and .csv"
          + (f", {plates} plates to {plates_dir}" if plates else ""))
    return 0
