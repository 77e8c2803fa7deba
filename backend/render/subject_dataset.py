"""A prepared subject folder loaded for training/evaluation: images, masks, the track and
the per-frame NeRF conditions, plus building a fresh SubjectNeRF fitted to its ranges.

The subject on disk (finding it, reading ``subject.json``) is backend/subjects.py; tracking a
video into a subject is tracking.py + prepare.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from backend.render.camera import PinholeCamera
from backend.render.conditions import as_tensor
from backend.render.frame_render import FrameConditions, frame_conditions, training_camera
from backend.render.model import BANK_SIZE, SubjectModelConfig, SubjectNeRF
from backend.render.prepare import upper_face_box
from backend.subjects import load_subject_info


def torso_box_from_masks(masks: np.ndarray, camera: PinholeCamera, depth: float,
                         near: float = 3.0, far: float = 4.0, pad: float = 0.1) -> torch.Tensor:
    """World box holding every person pixel between ``depth - near`` and ``depth + far``."""
    union = masks.max(axis=0) > 0
    ys, xs = np.nonzero(union)
    u = np.array([xs.min(), xs.max() + 1], np.float64)
    v = np.array([ys.min(), ys.max() + 1], np.float64)
    zs = np.array([depth - near, depth + far])
    corners = np.array([[(uu - camera.cx) / camera.fx * z, (vv - camera.cy) / camera.fy * z, z]
                        for uu in u for vv in v for z in zs])
    lo, hi = corners.min(0), corners.max(0)
    span = hi - lo
    return torch.tensor(np.stack([lo - pad * span, hi + pad * span]), dtype=torch.float32)


class SubjectDataset:
    """Everything training and evaluation read from a prepared subject folder."""

    def __init__(self, subject_dir: str | Path):
        self.dir = Path(subject_dir)
        self.info = load_subject_info(self.dir)
        prepared = self.dir / "prepared"
        if not (prepared / "frames.npy").is_file():
            raise FileNotFoundError(f"{prepared}/frames.npy not found: this subject folder holds no prepared "
                                    f"frames (re-run `emogene prepare-subject`)")
        self.frames = np.load(prepared / "frames.npy")            # uint8 [T, H, W, 3]
        self.masks = np.load(prepared / "masks.npy")              # uint8 [T, H, W]
        self.head_masks = np.load(prepared / "head_masks.npy")    # uint8 [T, H, W]
        self.mouth_boxes = np.load(prepared / "mouth_boxes.npy")  # int32 [T, 4]
        track = np.load(prepared / "track_native.npz")
        self.track = {k: track[k] for k in track.files}
        #: int32 [T, 4] brow-and-eye boxes at the working resolution (None: a track without working landmarks)
        self.upper_face_boxes = None if "landmarks_working" not in self.track else np.stack(
            [upper_face_box(p, self.frames.shape[2:0:-1]) for p in self.track["landmarks_working"]])
        import cv2
        bg = cv2.imread(str(self.dir / self.info["background"]))
        self.background = bg[..., ::-1].copy()
        self.camera = training_camera(self.info)
        self.train_range = tuple(self.info["split"]["train"])
        self.heldout_range = tuple(self.info["split"]["heldout"])

    @property
    def train_indices(self) -> np.ndarray:
        return np.arange(*self.train_range)

    @property
    def heldout_indices(self) -> np.ndarray:
        return np.arange(*self.heldout_range)

    def build_model(self, config: SubjectModelConfig | None = None) -> SubjectNeRF:
        """A fresh model whose landmark code, pose reference, boxes and banks fit this subject."""
        config = config or SubjectModelConfig()
        train = self.train_indices
        mean_t = np.asarray(self.info["mean_head_translation"], np.float32)
        torso_box = torso_box_from_masks(self.masks[train], self.camera, float(mean_t[2]))
        model = SubjectNeRF(config, torso_box=torso_box)
        model.landmark_code.fit(as_tensor(self.track["landmarks"][train]))
        model.mean_rotation.copy_(as_tensor(np.asarray(self.info["mean_head_rotation"]).reshape(3, 3)))
        model.mean_translation.copy_(as_tensor(mean_t))
        cond = frame_conditions(model, self.track["landmarks"][train], self.track["rotation"][train],
                                self.track["translation"][train], self.track["scale"][train])
        self._carve_occupancy(model)
        bank = torch.linspace(0, len(train) - 1, BANK_SIZE).round().long()
        model.code_bank.copy_(cond.code[bank])
        model.pose_bank.copy_(cond.pose[bank])
        return model

    @torch.no_grad()
    def _carve_occupancy(self, model: SubjectNeRF, frames: int = 64, dilate_px: int = 3) -> None:
        """Visual-hull priors: torso cells must project into the union person mask; head cells
        into some training frame's dilated person mask under that frame's head pose."""
        import cv2
        cam = self.camera
        h, w = self.masks.shape[1:3]
        kernel = np.ones((2 * dilate_px + 1,) * 2, np.uint8)
        train = self.train_indices
        union = cv2.dilate((self.masks[train].max(0) > 127).astype(np.uint8), kernel) > 0

        def inside(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
            z = points[:, 2]
            u = np.floor(cam.fx * points[:, 0] / np.maximum(z, 1e-6) + cam.cx).astype(int)
            v = np.floor(cam.fy * points[:, 1] / np.maximum(z, 1e-6) + cam.cy).astype(int)
            ok = (z > 1e-3) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
            out = np.zeros(len(points), bool)
            out[ok] = mask[v[ok], u[ok]]
            return out

        box = model.torso_box.cpu().numpy()
        centres = model.torso_grid.cell_centres().cpu().numpy()
        model.torso_grid.set_allowed(torch.from_numpy(inside(box[0] + centres * (box[1] - box[0]), union)))
        box = model.head_box.cpu().numpy()
        canonical = box[0] + model.head_grid.cell_centres().cpu().numpy() * (box[1] - box[0])
        flip = np.diag([1.0, -1.0, -1.0])
        allowed = np.zeros(len(canonical), bool)
        for i in train[np.linspace(0, len(train) - 1, min(frames, len(train))).round().astype(int)]:
            r, t = self.track["rotation"][i], self.track["translation"][i]
            s = float(self.track["scale"][i])
            world = s * canonical @ (r @ flip).T + t
            mask = cv2.dilate((self.masks[i] > 127).astype(np.uint8), kernel) > 0
            allowed |= inside(world, mask)
        model.head_grid.set_allowed(torch.from_numpy(allowed))

    def conditions(self, model: SubjectNeRF, indices: np.ndarray, device="cpu") -> FrameConditions:
        t = self.track
        return frame_conditions(model, t["landmarks"][indices], t["rotation"][indices], t["translation"][indices],
                                t["scale"][indices], device)
