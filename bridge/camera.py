"""The camera contract: one Blender camera (:class:`CameraSpec`), a camera per frame (:class:`CameraTrack`),
their wire form, their validation and the plate size rule. Shared by the add-on, the CLI, the server and
the renderer (stdlib + numpy only, so it imports in Blender's Python).

Conventions (Blender's own): the camera looks along its local -Z with +Y up; ``anchor_from_camera`` is its
4x4 matrix in the subject anchor's space (+Z up, the face looks toward -Y, origin at the head's reference
point, metres at an inter-ocular distance of 6.3 cm); the sensor fit picks which image side the sensor size
spans (AUTO: the longer side, with ``sensor_width_mm``); shift is in units of that side; ``resolution`` is
the render size after the resolution percentage, and decides the aspect the sensor fit sees.

Wire form (``generate`` content). ``camera``: one object with the fields of :class:`CameraSpec` (protocol
v2 as first shipped; a still camera). An animated camera adds ``camera.frames = {"buffer": k, "layout":
FRAME_LAYOUT}``: buffer ``k`` (the last one) is a float64 ``[frames, 21]`` array, one row per output
frame (focal length, sensor width/height, shift x/y, then ``anchor_from_camera`` row-major); sensor fit,
resolution and clipping stay those of ``camera`` (frame 0's). A server that understands it says so in its welcome
(``capabilities.camera_frames``); older servers refuse ``frames`` as an unknown camera field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

import numpy as np

SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")
#: largest plate side anyone may ask for (a subject's own limit is usually far lower)
MAX_RESOLUTION = 8192
#: the numbers of one frame's camera in a frame row (``anchor_from_camera`` spans 16 columns)
FRAME_LAYOUT = ("focal_length_mm", "sensor_width_mm", "sensor_height_mm", "shift_x", "shift_y",
                "anchor_from_camera")
FRAME_COLUMNS = 5 + 16
#: the welcome's ``capabilities`` key of a server that renders a camera per frame
CAPABILITY = "camera_frames"
#: allowed ranges: a value outside is refused with the field's name
LIMITS = {"focal_length_mm": (1e-3, 1e5), "sensor_width_mm": (1e-3, 1e5), "sensor_height_mm": (1e-3, 1e5),
          "shift_x": (-10.0, 10.0), "shift_y": (-10.0, 10.0), "clip_start": (0.0, 1e12), "clip_end": (0.0, 1e12)}
#: fields a client must send; the others default as in :class:`CameraSpec`
REQUIRED = ("focal_length_mm", "sensor_width_mm", "sensor_height_mm", "resolution")


class CameraError(ValueError):
    """A camera the contract refuses; ``field`` names the offending field (``camera.<name>``)."""

    def __init__(self, field_name: str, text: str):
        super().__init__(f"{field_name} {text}")
        self.field = field_name


def _identity() -> np.ndarray:
    return np.eye(4, dtype=np.float64)


@dataclass
class CameraSpec:
    """A Blender camera as the add-on sends it (see the module docstring for the conventions)."""
    focal_length_mm: float
    sensor_width_mm: float
    sensor_height_mm: float
    sensor_fit: str                 # "AUTO" | "HORIZONTAL" | "VERTICAL" (the wire's default: AUTO)
    resolution: tuple[int, int]     # (width, height) in pixels, after resolution percentage
    shift_x: float = 0.0
    shift_y: float = 0.0
    anchor_from_camera: np.ndarray = field(default_factory=_identity)
    clip_start: float = 0.01
    clip_end: float = 100.0

    def __post_init__(self) -> None:
        self.anchor_from_camera = np.asarray(self.anchor_from_camera, np.float64).reshape(4, 4)
        self.resolution = (int(self.resolution[0]), int(self.resolution[1]))

    def to_content(self) -> dict[str, Any]:
        """The JSON ``camera`` object of a request."""
        return {"focal_length_mm": float(self.focal_length_mm), "sensor_width_mm": float(self.sensor_width_mm),
                "sensor_height_mm": float(self.sensor_height_mm), "sensor_fit": str(self.sensor_fit),
                "resolution": [int(self.resolution[0]), int(self.resolution[1])],
                "shift_x": float(self.shift_x), "shift_y": float(self.shift_y),
                "anchor_from_camera": [float(v) for v in self.anchor_from_camera.reshape(16)],
                "clip_start": float(self.clip_start), "clip_end": float(self.clip_end)}

    @classmethod
    def from_content(cls, value: Any) -> "CameraSpec":
        """A validated spec from a request's ``camera`` object (``frames`` is :class:`CameraTrack`'s)."""
        if not isinstance(value, Mapping):
            raise CameraError("camera", "must be an object or null")
        unknown = set(value) - set(FIELD_NAMES) - {"frames"}
        if unknown:
            raise CameraError("camera", f"has unknown field(s) {sorted(unknown)}; expected {list(FIELD_NAMES)}")
        for name in REQUIRED:
            if value.get(name) is None:
                raise CameraError(f"camera.{name}", "is missing")
        out: dict[str, Any] = {name: _number(value, name) for name in LIMITS if name in value}
        fit = value.get("sensor_fit", "AUTO")
        if fit not in SENSOR_FITS:
            raise CameraError("camera.sensor_fit", f"must be one of {SENSOR_FITS}, got {str(fit)[:40]!r}")
        out["sensor_fit"] = str(fit)
        out["resolution"] = parse_resolution(value["resolution"], "camera.resolution")
        matrix = value.get("anchor_from_camera")
        out["anchor_from_camera"] = _matrix(matrix) if matrix is not None else _identity()
        spec = cls(**out)
        spec.check()
        return spec

    def check(self) -> "CameraSpec":
        """Raise :class:`CameraError` unless every field is usable; returns self."""
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                    or not (math.isfinite(value) and low <= value <= high):
                raise CameraError(f"camera.{name}", f"= {value!r} is outside [{low:g}, {high:g}]")
        if self.clip_end < self.clip_start:
            raise CameraError("camera.clip_end", f"= {self.clip_end} is below clip_start = {self.clip_start}")
        if self.sensor_fit not in SENSOR_FITS:
            raise CameraError("camera.sensor_fit", f"must be one of {SENSOR_FITS}, got {self.sensor_fit!r}")
        parse_resolution(list(self.resolution), "camera.resolution")
        _check_pose(self.anchor_from_camera, "camera.anchor_from_camera")
        return self

    def with_resolution(self, size: tuple[int, int]) -> "CameraSpec":
        """The same camera rendered at another size (what Blender shows at that render size)."""
        return replace(self, resolution=(int(size[0]), int(size[1])))

    def frame_row(self) -> np.ndarray:
        """float64 ``[21]``: this camera's numbers in :data:`FRAME_LAYOUT` order."""
        head = [self.focal_length_mm, self.sensor_width_mm, self.sensor_height_mm, self.shift_x, self.shift_y]
        return np.concatenate([np.asarray(head, np.float64), self.anchor_from_camera.reshape(16)])

    def with_frame_row(self, row: np.ndarray) -> "CameraSpec":
        """This camera with one frame's numbers (a row in :data:`FRAME_LAYOUT` order)."""
        return replace(self, focal_length_mm=float(row[0]), sensor_width_mm=float(row[1]),
                       sensor_height_mm=float(row[2]), shift_x=float(row[3]), shift_y=float(row[4]),
                       anchor_from_camera=np.array(row[5:21], np.float64).reshape(4, 4))


FIELD_NAMES = tuple(f.name for f in fields(CameraSpec))


@dataclass
class CameraTrack:
    """A camera per output frame: ``base`` holds what cannot change over a take (sensor fit, resolution;
    clipping, which plates do not use), ``rows`` float64 ``[frames, 21]`` the rest (:data:`FRAME_LAYOUT`)."""
    base: CameraSpec
    rows: np.ndarray

    def __post_init__(self) -> None:
        self.rows = np.asarray(self.rows, np.float64)
        if self.rows.ndim != 2 or self.rows.shape[1] != FRAME_COLUMNS or len(self.rows) == 0:
            raise CameraError("camera.frames", f"must be [frames, {FRAME_COLUMNS}] with frames >= 1, "
                                               f"got {list(self.rows.shape)}")

    @classmethod
    def from_specs(cls, specs: list[CameraSpec]) -> "CameraTrack":
        """The track of one spec per frame; sensor fit and resolution must not change (clipping is the first
        frame's: plates are not clipped)."""
        if not specs:
            raise CameraError("camera.frames", "needs at least one frame")
        base = specs[0]
        for i, spec in enumerate(specs):
            for name in ("sensor_fit", "resolution"):
                if getattr(spec, name) != getattr(base, name):
                    raise CameraError(f"camera.{name}", f"changes at frame {i} ({getattr(base, name)!r} -> "
                                                        f"{getattr(spec, name)!r}); it must hold over a take")
        return cls(base, np.stack([spec.frame_row() for spec in specs]))

    def __len__(self) -> int:
        return len(self.rows)

    def at(self, index: int) -> CameraSpec:
        """Frame ``index``'s camera."""
        return self.base.with_frame_row(self.rows[index])

    @property
    def is_still(self) -> bool:
        """True when every frame has the same camera (a still camera sent per frame)."""
        return bool(np.all(self.rows == self.rows[:1]))

    def with_resolution(self, size: tuple[int, int]) -> "CameraTrack":
        return CameraTrack(self.base.with_resolution(size), self.rows)

    def to_wire(self, buffer_index: int) -> tuple[dict[str, Any], np.ndarray]:
        """The ``camera`` object (frame 0's values, plus ``frames``) and the rows buffer to send as buffer
        ``buffer_index`` (the last of the message)."""
        content = self.at(0).to_content()
        content["frames"] = {"buffer": int(buffer_index), "layout": list(FRAME_LAYOUT)}
        return content, np.ascontiguousarray(self.rows, np.float64)

    @classmethod
    def from_wire(cls, base: CameraSpec, frames: Any, rows: np.ndarray, frame_count: int) -> "CameraTrack":
        """Validate ``camera.frames`` and its buffer against the job's ``frame_count``."""
        if not isinstance(frames, Mapping) or set(frames) != {"buffer", "layout"}:
            raise CameraError("camera.frames", 'must be {"buffer": INDEX, "layout": [...]}')
        layout = frames["layout"]
        if not isinstance(layout, list) or layout != list(FRAME_LAYOUT):
            raise CameraError("camera.frames.layout", f"must be {list(FRAME_LAYOUT)}, got "
                                                      f"{str(frames['layout'])[:200]}")
        rows = np.asarray(rows)
        if rows.dtype.kind != "f":
            raise CameraError("camera.frames", f"buffer must hold floats, got {rows.dtype}")
        if rows.ndim != 2 or rows.shape[1] != FRAME_COLUMNS:
            raise CameraError("camera.frames", f"buffer must be [frames, {FRAME_COLUMNS}], got {list(rows.shape)}")
        if len(rows) != frame_count:
            raise CameraError("camera.frames", f"has {len(rows)} frames; this audio at this fps makes "
                                               f"{frame_count} (one camera per output frame)")
        bad = np.nonzero(~np.isfinite(rows).all(axis=1))[0]
        if len(bad):
            raise CameraError("camera.frames", f"frame {int(bad[0])} holds NaN or infinite numbers")
        track = cls(base, rows.astype(np.float64))
        for name, column in zip(FRAME_LAYOUT[:5], range(5)):
            low, high = LIMITS[name]
            outside = np.nonzero((track.rows[:, column] < low) | (track.rows[:, column] > high))[0]
            if len(outside):
                i = int(outside[0])
                raise CameraError(f"camera.frames.{name}", f"= {track.rows[i, column]} at frame {i} is outside "
                                                           f"[{low:g}, {high:g}]")
        poses = track.rows[:, 5:].reshape(-1, 4, 4)
        bad = np.nonzero(~np.all(np.abs(poses[:, 3] - [0.0, 0.0, 0.0, 1.0]) <= 1e-6, axis=1)
                         | (np.abs(np.linalg.det(poses[:, :3, :3])) < 1e-12))[0]
        if len(bad):
            i = int(bad[0])
            _check_pose(poses[i], f"camera.frames.anchor_from_camera at frame {i}")
        return track


def camera_from_content(value: Any, frame_count: int, buffers: list[Any],
                        frames_buffer: int | None = None) -> CameraSpec | CameraTrack | None:
    """The request's camera: None, a still :class:`CameraSpec`, or a :class:`CameraTrack` when it carries
    ``frames`` (an array in ``buffers``; at index ``frames_buffer`` when the message layout fixes it).
    Raises :class:`CameraError`."""
    if value is None:
        return None
    spec = CameraSpec.from_content(value)
    frames = value.get("frames")
    if frames is None:
        return spec
    index = frames.get("buffer") if isinstance(frames, Mapping) else None
    if (isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(buffers)
            or (frames_buffer is not None and index != frames_buffer)
            or not isinstance(buffers[index], np.ndarray)):
        where = f"buffer {frames_buffer}" if frames_buffer is not None else f"one of {len(buffers)} buffers"
        raise CameraError("camera.frames.buffer", f"must name the message's array {where}, "
                                                  f"got {str(index)[:40]!r}")
    return CameraTrack.from_wire(spec, frames, buffers[index], frame_count)


def frame_camera(camera: CameraSpec | CameraTrack, index: int) -> CameraSpec:
    """Output frame ``index``'s camera (a still camera is every frame's)."""
    return camera.at(index) if isinstance(camera, CameraTrack) else camera


def frame_buffers(value: Any) -> int:
    """How many buffers a request's ``camera`` adds (1 with per-frame cameras, else 0)."""
    return 1 if isinstance(value, Mapping) and value.get("frames") is not None else 0


def camera_content(camera: "CameraSpec | Mapping[str, Any]") -> dict[str, Any]:
    """A still camera's ``camera`` object: a spec's full content, or a mapping with its names checked and
    its matrix flattened (the server validates the rest)."""
    if isinstance(camera, CameraSpec):
        return camera.check().to_content()
    unknown = set(camera) - set(FIELD_NAMES)
    if unknown:
        raise CameraError("camera", f"has unknown field(s) {sorted(unknown)}; expected {list(FIELD_NAMES)}")
    out = dict(camera)
    if "anchor_from_camera" in out:
        matrix = np.asarray(out["anchor_from_camera"], dtype=np.float64)
        if matrix.size != 16:
            raise CameraError("camera.anchor_from_camera", f"must be a 4x4 matrix (16 floats), got {matrix.size}")
        out["anchor_from_camera"] = [float(v) for v in matrix.reshape(16)]
    if "resolution" in out:
        out["resolution"] = [int(v) for v in out["resolution"]]
    return out


def parse_resolution(value: Any, name: str = "resolution") -> tuple[int, int]:
    """``[width, height]`` with integers in 1..MAX_RESOLUTION, or :class:`CameraError` naming ``name``."""
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_RESOLUTION for v in value)):
        raise CameraError(name, f"must be [width, height] with integers in 1..{MAX_RESOLUTION}, "
                                f"got {str(value)[:80]}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class PlateSize:
    """The plate size of a job and why: ``fitted`` when a camera's render size was scaled down to fit."""
    width: int
    height: int
    fitted_from: tuple[int, int] | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


class PlateSizeError(ValueError):
    """An explicit plate size above the subject's limit."""


def plate_size(requested: tuple[int, int] | None, camera: CameraSpec | CameraTrack | None,
               subject_size: tuple[int, int], limit: int) -> PlateSize:
    """THE plate size rule. An explicit ``requested`` size wins and must be within ``limit`` (longer side);
    else a Blender camera's render size, scaled down (aspect kept) to the limit; else the subject's own."""
    if requested is not None:
        width, height = (int(v) for v in requested)
        if width <= 0 or height <= 0:
            raise PlateSizeError(f"plate resolution must be positive, got {width}x{height}")
        if max(width, height) > limit:
            raise PlateSizeError(f"plate resolution {width}x{height} is above the subject's limit of {limit} "
                                 f"pixels per side")
        return PlateSize(width, height)
    if camera is not None:
        scene = (camera.base if isinstance(camera, CameraTrack) else camera).resolution
        fitted = fit_within(scene, limit)
        return PlateSize(*fitted, fitted_from=scene if fitted != tuple(scene) else None)
    return PlateSize(int(subject_size[0]), int(subject_size[1]))


def fit_within(size: tuple[int, int], limit: int) -> tuple[int, int]:
    """``size`` scaled down (aspect kept) so its longer side is at most ``limit``; unchanged when it fits."""
    width, height = (int(v) for v in size)
    if max(width, height) <= limit:
        return width, height
    factor = limit / max(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


def _number(value: Mapping[str, Any], name: str) -> float:
    raw = value[name]
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise CameraError(f"camera.{name}", f"must be a number, got {str(raw)[:64]!r}")
    if isinstance(raw, int) and not -2**63 <= raw <= 2**63:   # before any float conversion
        raise CameraError(f"camera.{name}", f"is an integer of {len(str(abs(raw)))} digits")
    low, high = LIMITS[name]
    if not (math.isfinite(raw) and low <= raw <= high):
        raise CameraError(f"camera.{name}", f"= {raw!r} is outside [{low:g}, {high:g}]")
    return float(raw)


def _matrix(value: Any) -> np.ndarray:
    if (not isinstance(value, (list, tuple)) or len(value) != 16
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and -1e300 < v < 1e300
                       for v in value)):
        raise CameraError("camera.anchor_from_camera", "must be 16 finite numbers (4x4, row-major)")
    return np.array(value, np.float64).reshape(4, 4)


def _check_pose(matrix: np.ndarray, name: str) -> None:
    """An affine camera pose with an invertible 3x3 part (the renderer divides by its scale)."""
    if not np.all(np.isfinite(matrix)):
        raise CameraError(name, "holds NaN or infinite numbers")
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise CameraError(name, f"must be affine (last row 0 0 0 1), got {matrix[3].tolist()}")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        raise CameraError(name, "has a singular rotation/scale part (determinant ~ 0)")
