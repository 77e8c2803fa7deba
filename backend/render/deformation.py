"""Landmark-driven deformation of the head's canonical space (training-free, D-NeRF style).

A subject NeRF can only render the expressions its code was trained on. To show others,
each frame gets *source* landmarks ``p`` (what the NeRF renders for the frame's code) and
*target* landmarks ``q`` (what the job asks for). :class:`LandmarkWarp` is a backward warp
``u(x)`` of canonical space with ``u(q_k) ~= p_k - q_k``: Gaussian radial basis function
interpolation with a small ridge, so it is smooth and fades to zero away from the face. The
kernel is wider along depth (canonical z) than across the face: tracked landmark depths are
rough, and the skin behind or in front of a landmark has to move with it.
A head sample at ``x`` (target space) is looked up at ``x + u(x)`` (source space): rays are
bent back into the trained face, and the face appears moved onto the target landmarks.

The ridge grows until the warp neither folds space nor overshoots near the landmarks (a fold
renders as smeared eyes when brows are pulled onto them). No displacement, no warp
(:meth:`LandmarkWarp.fit` returns ``None`` and rendering is bit-identical); otherwise only samples
inside the head box and near the landmarks are warped, reading the warp trilinearly from a
0.1-unit lattice (about 6-9 % of a frame's CPU time at 128-256 px).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from backend.render.sampling import RaySamples
from bridge import landmarks as ibug
from bridge.landmarks import NUM_LANDMARKS

#: iBUG indices of the inner lip contour (60-67) and of the whole mouth (48-67)
INNER_LIPS = tuple(ibug.INNER_LIP)
MOUTH = tuple(ibug.MOUTH)
UPPER_INNER_LIP = (61, 62, 63)
LOWER_INNER_LIP = (65, 66, 67)


@dataclass(frozen=True)
class WarpConfig:
    """Width and ridge of the interpolation, in canonical units (inter-ocular distance 1)."""
    width: float = 0.3            # Gaussian sigma of each landmark's influence (canonical x and y)
    # Gaussian sigma along canonical z (depth, toward the viewer), wider than ``width``: a landmark's tracked
    # depth misses the rendered skin by a few tenths, and an isotropic kernel then moves the skin far less than
    # the landmark (default subject, FaceMesh on the plates: brows 0.25 -> ~0.8 of the asked displacement,
    # mouth corners 0.65 -> ~0.8; 1.0 gives most of it). None: ``width`` (isotropic)
    depth_width: float | None = 2.0
    ridge: float = 1e-2           # Tikhonov term added to the landmark-by-landmark kernel matrix (its diagonal is 1)
    # fold-free: the ridge grows (x3 per try, up to max_ridge) until the map x -> x + u(x) keeps
    # det(I + du/dx) >= min_jacobian near every landmark; folds render as ghosts (seen at eyelids)
    min_jacobian: float = 0.45
    max_gain: float = 1.25        # ... and no displacement near them above max_gain x the largest landmark's
    max_ridge: float = 3.0
    # the brow hair moves as a band: a virtual point this far below each brow landmark (canonical -y) moves
    # with it, so a raised brow stretches the eyelid skin below, not the brow itself (0: no band)
    brow_band: float = 0.1
    reach: float = 3.0            # samples farther than reach * width outside the landmarks' box are not warped
    min_displacement: float = 1e-4  # below this (largest |p - q|), no warp at all
    chunk: int = 65536            # samples per kernel evaluation (bounds memory)
    grid_step: float = 0.1        # samples read the warp from a lattice this fine, trilinearly (width / 3;
    #                               along depth depth_width / 3)


class LandmarkWarp:
    """One frame's backward warp ``u(x) = sum_k exp(-|x - q_k|^2 / 2 w^2) a_k``."""

    def __init__(self, centres: torch.Tensor, coefficients: torch.Tensor, config: WarpConfig):
        self.centres = centres            # [NUM_LANDMARKS, 3] target landmarks q
        self.coefficients = coefficients  # [NUM_LANDMARKS, 3]
        self.config = config
        margin = config.reach * _widths(config).to(centres)
        self.low = centres.amin(0) - margin
        self.high = centres.amax(0) + margin
        self._lattice: torch.Tensor | None = None

    @classmethod
    def fit(cls, source: torch.Tensor, target: torch.Tensor,
            config: WarpConfig | None = None) -> "LandmarkWarp | None":
        """The warp carrying ``target`` back onto ``source`` (both ``[NUM_LANDMARKS, 3]``); ``None`` when they match."""
        config = config or WarpConfig()
        if source.shape != target.shape or source.shape[-1] != 3:
            raise ValueError(f"source {tuple(source.shape)} and target {tuple(target.shape)} landmarks must "
                             f"both be [N, 3]")
        displacement = (source - target).double()
        if float(displacement.norm(dim=-1).max()) < config.min_displacement:
            return None
        target = _with_brow_band(target, config.brow_band)
        displacement = _with_brow_band(displacement, config.brow_band, shift=False)
        q = target.double()
        inverse_widths = 1 / _widths(config).to(q)
        kernel = torch.exp(-torch.cdist(q * inverse_widths, q * inverse_widths).square() / 2)
        eye = torch.eye(len(q), dtype=q.dtype, device=q.device)
        probes = _probes(q, config.width / 4)
        ridge = config.ridge
        while True:
            coefficients = torch.linalg.solve(kernel + ridge * eye, displacement)
            if ridge * 3 > config.max_ridge or _well_behaved(probes, q, coefficients, displacement, config):
                break
            ridge *= 3
        return cls(target.float(), coefficients.to(target.dtype), config)

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """Displacement ``[N, 3]`` at canonical ``points [N, 3]`` (source = point + displacement)."""
        out = torch.empty_like(points)
        inverse_widths = 1 / _widths(self.config).to(points)
        centres = self.centres * inverse_widths
        for i in range(0, len(points), self.config.chunk):
            part = points[i:i + self.config.chunk] * inverse_widths
            weights = torch.exp(-torch.cdist(part, centres).square() / 2)
            out[i:i + self.config.chunk] = weights @ self.coefficients
        return out

    def lattice(self) -> torch.Tensor:
        """The warp at the nodes of a regular lattice over ``[low, high]``, ``[1, 3, D, H, W]`` (built once)."""
        if self._lattice is None:
            step = self.config.grid_step * _widths(self.config).to(self.low) / self.config.width   # coarser in depth
            counts = ((self.high - self.low) / step).ceil().long() + 1
            axes = [torch.linspace(float(lo), float(hi), int(n), device=self.low.device)
                    for lo, hi, n in zip(self.low, self.high, counts)]
            nodes = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)          # [X, Y, Z, 3]
            values = self(nodes.reshape(-1, 3)).reshape(*nodes.shape)
            self._lattice = values.permute(3, 2, 1, 0)[None].contiguous()         # [1, 3, Z, Y, X]
        return self._lattice

    def interpolate(self, points: torch.Tensor) -> torch.Tensor:
        """The warp at ``points [N, 3]`` inside ``[low, high]``, read trilinearly from :meth:`lattice`."""
        normalised = (points - self.low) / (self.high - self.low) * 2 - 1        # grid_sample's x, y, z order
        values = torch.nn.functional.grid_sample(self.lattice(), normalised[None, :, None, None],
                                                 mode="bilinear", align_corners=True)
        return values[0, :, :, 0, 0].T

    def warp_samples(self, samples: RaySamples, box: torch.Tensor) -> RaySamples:
        """``samples`` of a field in ``box [2, 3]`` moved to where the trained face holds them.

        Only kept samples (inside the box) near the landmarks move; a sample warped out of
        the box is dropped. Segment lengths stay those of the straight ray.
        """
        span = box[1] - box[0]
        flat = samples.positions01.reshape(-1, 3)
        keep = samples.keep.reshape(-1)
        points = box[0] + flat * span
        near = keep & ((points >= self.low) & (points <= self.high)).all(dim=-1)
        index = near.nonzero(as_tuple=True)[0]
        if not len(index):
            return samples
        moved = flat.clone()
        moved[index] = (points[index] + self.interpolate(points[index]) - box[0]) / span
        inside = ((moved >= 0) & (moved <= 1)).all(dim=-1)
        return replace(samples, positions01=moved.reshape(samples.positions01.shape),
                       keep=(keep & inside).reshape(samples.keep.shape))


BROWS = tuple(ibug.REGIONS["brow_r"]) + tuple(ibug.REGIONS["brow_l"])


def _with_brow_band(points: torch.Tensor, band: float, shift: bool = True) -> torch.Tensor:
    """``points [NUM_LANDMARKS, 3]`` plus one row per brow landmark: the landmark ``band`` lower (``shift``) or its
    own value (displacements), so the brow band between them moves as one."""
    if band <= 0 or len(points) != NUM_LANDMARKS:
        return points
    extra = points[list(BROWS)].clone()
    if shift:
        extra[:, 1] -= band
    return torch.cat([points, extra])


def _widths(config: WarpConfig) -> torch.Tensor:
    """The kernel's Gaussian sigma along canonical x, y, z."""
    depth = config.width if config.depth_width is None else config.depth_width
    return torch.tensor([config.width, config.width, depth], dtype=torch.float64)


def _probes(centres: torch.Tensor, step: float) -> torch.Tensor:
    """The landmarks and six points around each, ``step`` away along the axes."""
    offsets = torch.cat([torch.zeros(1, 3), torch.eye(3), -torch.eye(3)]).to(centres) * step
    return (centres[:, None] + offsets[None]).reshape(-1, 3)


def _well_behaved(points: torch.Tensor, centres: torch.Tensor, coefficients: torch.Tensor,
                  displacement: torch.Tensor, config: WarpConfig) -> bool:
    """Whether ``u = sum_k exp(-|x - c_k|^2 / 2 w^2) a_k`` neither folds space (``det(I + du/dx)``
    below ``min_jacobian``) nor overshoots (``|u|`` above ``max_gain`` x the largest ``|displacement|``)
    at ``points``."""
    inverse_square = 1 / _widths(config).to(points).square()
    offset = points[:, None] - centres[None]                                     # [N, K, 3]
    weights = torch.exp(-(offset.square() * inverse_square).sum(-1) / 2)          # [N, K]
    jacobian = -torch.einsum("nk,ki,nkj->nij", weights, coefficients, offset * inverse_square)
    det = torch.linalg.det(torch.eye(3, dtype=points.dtype) + jacobian)
    gain = (weights @ coefficients).norm(dim=-1).max() / displacement.norm(dim=-1).max()
    return float(det.min()) >= config.min_jacobian and float(gain) <= config.max_gain


def limit_mouth_opening(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``target`` whose inner lips open no wider than in ``source`` (both ``[NUM_LANDMARKS, 3]``).

    A backward warp cannot invent the inside of a mouth: where the target opens wider than
    the source, the gap would be filled with stretched lip texture. So the extra vertical
    opening of the inner lips (target gap minus source gap, when positive) is taken out,
    half from the upper and half from the lower inner lip; the outer lips and the rest of
    the face still follow the target.
    """
    upper, lower = list(UPPER_INNER_LIP), list(LOWER_INNER_LIP)

    def gap(lm: torch.Tensor) -> torch.Tensor:
        return lm[upper, 1].mean() - lm[lower, 1].mean()

    extra = (gap(target) - gap(source)).clamp(min=0)
    if float(extra) == 0.0:
        return target
    limited = target.clone()
    limited[upper, 1] -= extra / 2
    limited[lower, 1] += extra / 2
    return limited


# -- which landmarks the NeRF code renders and which the warp carries ---------------------

EXPRESSION_MODES = ("warp", "code")
CARRY_MODES = ("none", "clamped", "residual")
#: landmark groups an emotion gain may name
GAIN_REGIONS: dict[str, tuple[int, ...]] = {
    "brows": BROWS,
    "eyes": tuple(ibug.REGIONS["eye_r"]) + tuple(ibug.REGIONS["eye_l"]),
}
#: FaceMesh reads only part of a brow or eyelid movement: warping a plate in 2-D by a displacement and tracking
#: it again gives brows 0.62-0.65 and eyes 0.63-0.68 of it on both shipped subjects (the *tracker ceiling* of
#: `emogene eval emotion`). The emotion model learnt its displacements from video tracked by the same FaceMesh,
#: so they are ~0.65 of the face's real movement; the picture has to move by displacement / 0.65 to look like
#: the video they came from. 1 / ceiling, rounded; mouth and jaw are left at 1 (speech shapes them). The mouth's
#: ceiling, measured the same way on the default subject's 512² plates, is 0.82 for corners and lips (KristiNoem,
#: 6 bursts; andrew_clip_1 0.83 / 0.82; mead_m030 at 128² 0.99 / 0.77), but a mouth gain of 1.2 (corners and lip
#: shape, each lip shifted back so the opening stayed speech's; session 5, commit 3216a36) read worse there
#: (KristiNoem, 6 bursts: happy 67 -> 67 %, sad 24 -> 11 %, the tracked opening of sad follows neutral's less,
#: corr 0.69 -> 0.58), so the mouth has no gain region (removed again to keep the warp's hot path simple).
TRACKER_COMPENSATION = (("brows", 1.6), ("eyes", 1.5))


@dataclass(frozen=True)
class ExpressionConfig:
    """How a subject shows an expression (``subject.json: "expression"``).

    ``warp`` (default): the NeRF code comes from the neutral track when there is one (speech,
    inside a neutrally filmed subject's range) and the warp carries emotional - neutral.
    ``code``: the code comes from the requested landmarks, clamped to the training range (a subject
    filmed with emotions renders them from its code); the warp carries only the emotion gain's extra.
    ``carry``: what else the warp carries in ``warp`` mode: ``clamped`` = the part of the code landmarks
    that clamping removes, ``residual`` = also what the code's 16 PCA components cannot express, ``none``.
    ``limit_mouth``: the inner lips open no wider than the code renders them. ``emotion_gain``: per landmark
    group, a multiplier on the emotion (requested minus neutral landmarks) the warp carries
    (:data:`TRACKER_COMPENSATION`); keyed neutral is untouched. ``code_regions``: groups whose emotion
    the ``warp`` mode's code renders too (keyed neutral is untouched).
    """
    mode: str = "warp"
    carry: str = "clamped"
    limit_mouth: bool = True
    warp: WarpConfig = WarpConfig()
    emotion_gain: tuple[tuple[str, float], ...] = TRACKER_COMPENSATION
    # opt-in, ``warp`` mode: landmark groups (GAIN_REGIONS) whose emotion also goes into the NeRF code, clamped to the
    # training range: the subject renders its own filmed movement of them and the warp carries only the rest (the
    # gain's extra, what clamping removes). "brows" on the default subject: no tall dark band below the raised
    # image-right brow (the warp stretching its hooded lid), but the code renders only part of the raise: KristiNoem,
    # 6 bursts, tracked brow transfer 0.97 -> 0.46, judge 34.0 -> 35.2 % (CIs overlap), lip-opening corr -0.01..-0.03
    # (notes/s5/brow_report.md). So not a default
    code_regions: tuple[str, ...] = ()
    # opt-in, ``code`` mode: the NeRF's code keeps the requested landmarks' first ``code_components`` PCA
    # components; the minor ones (their deviation from the subject's rest face) are multiplied by
    # ``code_minor_scale`` (0: the rest face's). Another speaker's minor components carry identity, not expression
    # (notes/s6/m030_report.md); the warp is unchanged. None: the code reads every component (default)
    code_components: int | None = None
    code_minor_scale: float = 0.0

    def __post_init__(self):
        if self.code_components is not None and int(self.code_components) < 0:
            raise ValueError(f"code_components must be >= 0, got {self.code_components}")
        if not 0 <= float(self.code_minor_scale) <= 1:
            raise ValueError(f"code_minor_scale must be in [0, 1], got {self.code_minor_scale}")
        if self.mode not in EXPRESSION_MODES:
            raise ValueError(f"expression mode {self.mode!r} is not one of {', '.join(EXPRESSION_MODES)}")
        if self.carry not in CARRY_MODES:
            raise ValueError(f"expression carry {self.carry!r} is not one of {', '.join(CARRY_MODES)}")
        for region, gain in self.emotion_gain:
            if region not in GAIN_REGIONS:
                raise ValueError(f"emotion_gain region {region!r} is not one of {', '.join(GAIN_REGIONS)}")
            if not 0 <= float(gain) <= 4:
                raise ValueError(f"emotion_gain {region!r} must be in [0, 4], got {gain}")
        for region in self.code_regions:
            if region not in GAIN_REGIONS:
                raise ValueError(f"code_regions entry {region!r} is not one of {', '.join(GAIN_REGIONS)}")

    def gain_vector(self) -> torch.Tensor:
        """``[NUM_LANDMARKS, 1]`` multiplier of each landmark's emotion displacement."""
        gain = torch.ones(NUM_LANDMARKS, 1)
        for region, value in self.emotion_gain:
            gain[list(GAIN_REGIONS[region])] = float(value)
        return gain


@dataclass
class ExpressionLandmarks:
    code_landmarks: torch.Tensor        # [F, NUM_LANDMARKS, 3] what the NeRF code is computed from
    source: torch.Tensor | None         # [F, NUM_LANDMARKS, 3] what the code renders (None: no warp)
    target: torch.Tensor | None         # [F, NUM_LANDMARKS, 3] what the job asks for


def reconstruct(landmark_code, code: torch.Tensor) -> torch.Tensor:
    """Landmarks ``[F, NUM_LANDMARKS, 3]`` of a (normalised) PCA code ``[F, K]`` of ``landmark_code``."""
    flat = landmark_code.mean + (code * landmark_code.std) @ landmark_code.basis
    return flat.reshape(len(code), NUM_LANDMARKS, 3)


def _with_emotion_gain(landmarks: torch.Tensor, neutral: torch.Tensor | None,
                       config: ExpressionConfig) -> torch.Tensor:
    """``landmarks`` whose emotion (minus ``neutral``) is multiplied by the config's per-region gain."""
    if neutral is None or not config.emotion_gain:
        return landmarks
    emotion = landmarks - neutral
    gain = config.gain_vector().to(landmarks).expand(emotion.shape[1:])
    # a lowered brow keeps gain 1: a backward warp cannot tuck the upper lid under it, and amplified it smears
    # brow and eye into one dark band (angry at 512²)
    lowered = torch.zeros_like(emotion[..., :1], dtype=torch.bool)
    lowered[:, list(BROWS)] = emotion[:, list(BROWS), 1:2] < 0
    return neutral + emotion * torch.where(lowered, torch.ones_like(gain), gain)


def shrink_minor_components(landmark_code, landmarks: torch.Tensor, rest: torch.Tensor, components: int,
                            scale: float) -> torch.Tensor:
    """``landmarks [F, NUM_LANDMARKS, 3]`` whose deviation from ``rest [NUM_LANDMARKS, 3]`` along the code's PCA
    components from ``components`` on is multiplied by ``scale`` (the rest of the deviation is kept)."""
    basis = landmark_code.basis[components:].to(landmarks)
    deviation = (landmarks - rest).reshape(len(landmarks), -1)
    minor = (deviation @ basis.T) @ basis
    return landmarks - (1 - scale) * minor.reshape(landmarks.shape)


def expression_landmarks(landmark_code, landmarks: torch.Tensor, neutral: torch.Tensor | None,
                         config: ExpressionConfig, rest: torch.Tensor | None = None) -> ExpressionLandmarks:
    """Split a requested track ``landmarks [F, NUM_LANDMARKS, 3]`` (and its ``neutral`` track, both already on
    the subject's face) into the code's landmarks and the warp's source -> target. ``rest``: the subject's rest
    face (needed by ``code_components``)."""
    if neutral is not None and neutral.shape != landmarks.shape:
        raise ValueError(f"neutral landmarks {tuple(neutral.shape)} do not match landmarks {tuple(landmarks.shape)}")
    if config.mode == "code":
        # the code renders the requested landmarks; the warp adds only the emotion gain's extra on brows and eyes
        code_landmarks = landmarks
        if config.code_components is not None:
            if rest is None:
                raise ValueError("expression code_components needs the subject's rest face")
            code_landmarks = shrink_minor_components(landmark_code, landmarks, rest, int(config.code_components),
                                                     float(config.code_minor_scale))
        gained = _with_emotion_gain(landmarks, neutral, config)
        if gained is landmarks or torch.equal(gained, landmarks):
            return ExpressionLandmarks(code_landmarks, None, None)
        return ExpressionLandmarks(code_landmarks, landmarks, gained)
    base = neutral if neutral is not None else landmarks
    if neutral is not None and config.code_regions:
        rows = [i for region in config.code_regions for i in GAIN_REGIONS[region]]
        base = neutral.clone()
        base[:, rows] = landmarks[:, rows]
    source = base
    if config.carry != "none":
        clamped, _ = landmark_code(base)
        rendered = reconstruct(landmark_code, clamped)
        if config.carry == "clamped":
            raw = ((base.reshape(len(base), -1) - landmark_code.mean) @ landmark_code.basis.T) / landmark_code.std
            source = base - (reconstruct(landmark_code, raw) - rendered)
        else:
            source = rendered
    target = _with_emotion_gain(landmarks, neutral, config)
    if config.limit_mouth:
        target = torch.stack([limit_mouth_opening(s, t) for s, t in zip(source, target)]) if len(target) else target
    return ExpressionLandmarks(base, source, target)


def expression_config(info: dict) -> ExpressionConfig:
    """The subject's :class:`ExpressionConfig` from ``subject.json`` (``"expression"``: a mode
    name or a dict of the config's fields); a bad value is a ValueError naming it."""
    raw = info.get("expression", "warp")
    if isinstance(raw, str):
        return ExpressionConfig(mode=raw)
    if isinstance(raw, dict):
        fields = dict(raw)
        if isinstance(fields.get("warp"), dict):
            fields["warp"] = WarpConfig(**fields["warp"])
        if isinstance(fields.get("emotion_gain"), dict):
            fields["emotion_gain"] = tuple(fields["emotion_gain"].items())
        if isinstance(fields.get("code_regions"), (list, str)):
            regions = fields["code_regions"]
            fields["code_regions"] = (regions,) if isinstance(regions, str) else tuple(regions)
        try:
            return ExpressionConfig(**fields)
        except TypeError as exc:
            raise ValueError(f"subject.json 'expression' {raw!r}: {exc}") from exc
    raise ValueError(f"subject.json 'expression' must be 'warp', 'code' or an object, got {raw!r}")
