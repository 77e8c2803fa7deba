"""A real backend server (ROUTER, worker, job store) with stand-in stages, for the add-on's plate path.

Motion: the placeholder stage (``tests/placeholder_motion.py``). Plates: a stand-in
renderer that emits flat pure red, green, blue frames in turn (frame index mod 3), so
the add-on's plate import and colour handling can be checked exactly while the
NeRF renderer is elsewhere. ``--plate-delay`` slows plates down so a test can stop
the backend in the middle of a job deterministically.

    python serve_test_plates.py --bind tcp://127.0.0.1:PORT --jobs-dir DIR [--plate-delay S]
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import numpy as np

from backend.composition import StageSet
from backend.server import BackendServer, ServerConfig
from backend.subjects import SubjectStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/: the placeholder motion stage
from placeholder_motion import PlaceholderMotionStage  # noqa: E402

PURE_COLOURS = np.array([[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255]], np.uint8)
DEFAULT_SIZE = (64, 48)
SUBJECT = "flat_colours"


class FlatColourRenderStage:
    name = "render"
    weight = 1.0

    def __init__(self, delay_s: float):
        self.delay_s = delay_s

    def run(self, job, ctx) -> None:
        width, height = job.resolution or DEFAULT_SIZE
        for index in range(job.frame_count):
            ctx.check_cancelled()
            plate = np.broadcast_to(PURE_COLOURS[index % 3], (height, width, 4)).copy()
            ctx.emit_plate(index, plate)
            ctx.progress((index + 1) / job.frame_count, f"plate {index + 1}/{job.frame_count}")
            if self.delay_s:
                time.sleep(self.delay_s)


class TestStageSet(StageSet):
    def __init__(self, delay_s: float, subjects):
        self._delay_s = delay_s
        super().__init__(device="cpu", subjects=subjects)

    def _motion_stage(self):
        return PlaceholderMotionStage(device=self.device, subjects=self.subjects)

    def _render_stage(self):
        return FlatColourRenderStage(self._delay_s)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--jobs-dir", required=True)
    parser.add_argument("--key-file")
    parser.add_argument("--plate-delay", type=float, default=0.0)
    args = parser.parse_args()
    key = None
    if args.key_file:
        from bridge.client import load_key
        key = load_key(args.key_file)
    # one stand-in subject, so plate jobs pass the server's subject check
    subjects_root = Path(args.jobs_dir) / "subjects"
    (subjects_root / SUBJECT).mkdir(parents=True, exist_ok=True)
    (subjects_root / SUBJECT / "subject.json").write_text('{"name": "%s", "version": 1}' % SUBJECT)
    subjects = SubjectStore([subjects_root])
    server = BackendServer(ServerConfig(bind=args.bind, key=key, jobs_dir=Path(args.jobs_dir)),
                           TestStageSet(args.plate_delay, subjects), subjects)
    signal.signal(signal.SIGTERM, lambda *_: server._stop.set())
    server.serve_forever(on_bound=lambda address: print(f"test backend on {address}", flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
