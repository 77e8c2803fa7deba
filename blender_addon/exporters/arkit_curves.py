"""ARKit blendshape weights of the current take, solved from its landmark F-curves as edited.

The face rig's curves are read exactly as the landmark exporter reads them
(``FCurve.evaluate`` per frame, so the animator's edits count), turned back into
canonical landmarks and fitted with the vendored ``bridge.arkit`` solver; the
rest face is looked for among the frames the emotion track keys as (mostly)
neutral, like ``emogene generate`` does. Files:
Live Link Face CSV (``Timecode`` from the Blender frame number at the scene's
frame rate) or JSON (``bridge.live_link_face``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import bridge_api, emotion_track, rig_space
from . import landmark_curves

@dataclass
class TakeWeights:
    frames: np.ndarray        # int [F] Blender frame numbers
    weights: np.ndarray       # float32 [F, 52] in ARKit order (bridge.arkit_names.ARKIT_NAMES)
    head_angles: np.ndarray   # float64 [F, 3] yaw, pitch, roll (radians)
    fps: float

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(bridge_api.module("arkit_names").ARKIT_NAMES)


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def solve_take(scene, collection=None) -> TakeWeights:
    """Weights for every frame of the current take (``ValueError`` without a complete take)."""
    curves = landmark_curves.read(scene, collection)
    solver = bridge_api.module("arkit")
    landmarks = curves.canonical
    try:   # the rest face comes from frames keyed (mostly) neutral, when there are any
        emotion = emotion_track.evaluate(scene, int(curves.frames[0]), int(curves.frames[-1]))
        rest = solver.rest_frames_from_emotion(emotion.weights, emotion.intensity)
    except (ValueError, AttributeError):
        rest = None
    weights = solver.solve(landmarks, solver.estimate_neutral(landmarks, rest)).weights
    camera_rotation = rig_space.rotation_from_rig(curves.head_matrix)
    return TakeWeights(curves.frames, weights, solver.head_angles(camera_rotation), scene_fps(scene))


def write_csv(take: TakeWeights, path: str) -> None:
    """Live Link Face CSV (``Timecode`` from the Blender frame number at the scene's frame rate)."""
    bridge_api.module("live_link_face").write_csv(path, take.weights, take.frames, take.fps, take.head_angles)


def write_json(take: TakeWeights, path: str) -> None:
    bridge_api.module("live_link_face").write_json(path, take.weights, take.frames, take.fps, take.head_angles,
                                                   source="EmoGene for Blender")
