"""Get the results of an earlier job (its id and token were printed by `emogene generate`) and write them
under --out as `emogene generate` would: landmarks.npz, landmarks.csv, plates/. The job is acknowledged
(deleted on the backend) once its results are written, unless --keep."""
from __future__ import annotations

import sys

from backend.commands._connection import Connection, add_connection_arguments, open_client
from backend.commands._job_stream import fail, receive_job, report_written


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

    from bridge.client import KeyFileError
    from bridge.errors import BridgeError
    from bridge.results import write_landmark_files

    out = Path(args.out)
    try:
        client = open_client(Connection.from_args(args), args.timeout)
    except (ValueError, KeyFileError) as exc:
        return fail("fetch", str(exc), 2)
    out.mkdir(parents=True, exist_ok=True)
    with client:
        client.tokens[args.job] = args.token
        received = receive_job(client, args.job, client.fetch(args.job, args.token), "fetch", out)
        if isinstance(received, int):
            return received
        if received.landmarks is None:
            return fail("fetch", f"job {args.job} ended without landmarks", 1)
        # the emotion track is the client's own input: not part of the job's results
        write_landmark_files(out, received.landmarks, received.rotation, received.translation, received.fps)
        if not args.keep:
            try:
                client.ack(args.job, args.token)
            except BridgeError as exc:
                print(f"emogene fetch: note: could not acknowledge job {args.job}: {exc}", file=sys.stderr)
    report_written(out, received)
    return 0
