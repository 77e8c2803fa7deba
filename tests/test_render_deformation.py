"""The landmark-driven deformation of the head's canonical space (backend/render/deformation.py):
the warp itself, a rendered feature moving by the projected landmark displacement, zero
displacement rendering bit-identically, the expression modes, and (slow) the default subject
showing the shipped LDM's happy at the mouth corners."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from backend.data.mean_face import MEAN_FACE_68
from backend.render.conditions import head_from_world
from backend.render.deformation import (ExpressionConfig, LandmarkWarp, WarpConfig, expression_config,
                                        expression_landmarks, limit_mouth_opening)
from backend.render.encodings import LandmarkCode
from backend.render.model import SubjectModelConfig, SubjectNeRF
from backend.render.train import render_frame

torch.set_num_threads(1)
FACE = torch.tensor(np.asarray(MEAN_FACE_68), dtype=torch.float32)
CORNER = 48   # the subject's right mouth corner


def smooth_displacement(centre: int, delta, width: float = 0.35) -> torch.Tensor:
    """A smooth, local landmark displacement: ``delta`` at landmark ``centre``, fading with distance."""
    falloff = torch.exp(-(FACE - FACE[centre]).square().sum(-1) / (2 * width ** 2))
    return falloff[:, None] * torch.tensor(delta, dtype=torch.float32)


# -- the warp ------------------------------------------------------------------------------

def test_warp_interpolates_a_smooth_displacement_and_fades_away_from_the_face():
    target = FACE + smooth_displacement(CORNER, (0.12, 0.10, 0.0))
    warp = LandmarkWarp.fit(FACE, target)
    wanted = FACE - target
    error = (warp(target) - wanted).norm(dim=-1)
    assert float(error.max()) < 0.15 * float(wanted.norm(dim=-1).max())
    # fades across the face within a few widths, along depth within a few depth widths
    depth = WarpConfig().depth_width
    far = FACE.mean(0) + torch.tensor([[4.0, 0, 0], [0, 5.0, 0], [0, 0, 1.5 + 3.5 * depth]])
    assert float(warp(far).norm(dim=-1).max()) < 1e-3
    # no overshoot: nowhere near the face moves much more than the largest landmark displacement
    points = FACE.mean(0) + torch.randn(5000, 3, generator=torch.Generator().manual_seed(0)) * 0.8
    assert float(warp(points).norm(dim=-1).max()) < 1.3 * float(wanted.norm(dim=-1).max())


def test_a_raised_brow_moves_its_hair_band_and_stretches_the_lid_below():
    """The brow band (the hair just below the brow landmarks) moves with the brow; the stretch goes to
    the eyelid skin (without the band, the band's bottom lags and the dark hair is stretched)."""
    target = FACE.clone()
    target[17:27, 1] += 0.1                                     # both brows up, the eyes stay
    band = FACE[17:27] - torch.tensor([0.0, WarpConfig().brow_band, 0.0])
    wanted = -0.1
    with_band = LandmarkWarp.fit(FACE, target)(band + torch.tensor([0.0, 0.1, 0.0]))[:, 1]
    without = LandmarkWarp.fit(FACE, target, WarpConfig(brow_band=0.0))(band + torch.tensor([0.0, 0.1, 0.0]))[:, 1]
    assert float((with_band / wanted).min()) > 0.9
    assert float((without / wanted).mean()) < float((with_band / wanted).mean()) - 0.05


def test_no_displacement_means_no_warp_and_bad_shapes_are_named():
    assert LandmarkWarp.fit(FACE, FACE.clone()) is None
    with pytest.raises(ValueError, match="landmarks"):
        LandmarkWarp.fit(FACE, FACE[:60])


def test_limit_mouth_opening_only_takes_out_extra_opening():
    source = FACE.clone()
    wide = FACE.clone()
    wide[[61, 62, 63], 1] += 0.1
    wide[[65, 66, 67], 1] -= 0.1
    wide[:, 0] += 0.05                      # the rest of the motion stays
    limited = limit_mouth_opening(source, wide)
    gap = lambda lm: lm[[61, 62, 63], 1].mean() - lm[[65, 66, 67], 1].mean()   # noqa: E731
    assert float(gap(limited)) == pytest.approx(float(gap(source)), abs=1e-6)
    assert torch.equal(limited[:, 0], wide[:, 0])
    closing = FACE.clone()
    closing[[65, 66, 67], 1] += 0.02
    assert torch.equal(limit_mouth_opening(source, closing), closing)


# -- rendering through SubjectNeRF with a stub head field ----------------------------------

class BlobField(nn.Module):
    """A small, dense, flat disc facing the camera at one canonical point (a feature on the skin):
    a few pixels wide on screen."""

    def __init__(self, centre: torch.Tensor, box: torch.Tensor, radius: float = 0.04, length: float = 0.03):
        super().__init__()
        self.box = box
        self.centre, self.radius, self.length = centre, radius, length

    def embed_condition(self, condition: torch.Tensor) -> torch.Tensor:
        return condition[:, :1] * 0

    def forward(self, positions01, embedding):
        offset = self.box[0] + positions01 * (self.box[1] - self.box[0]) - self.centre
        across = (offset[..., :2] / self.radius).square().sum(-1)
        along = (offset[..., 2] / self.length).square()
        return 50.0 * torch.exp(-across - along), torch.ones(*positions01.shape[:-1], 3)


class EmptyField(BlobField):
    def forward(self, positions01, embedding):
        return torch.zeros(positions01.shape[:-1]), torch.zeros(*positions01.shape[:-1], 3)


FOCAL, SIZE, DEPTH = 300.0, 96, 10.0


def stub_model() -> SubjectNeRF:
    model = SubjectNeRF(SubjectModelConfig(head_samples=384)).eval()
    model.head_field = BlobField(FACE[CORNER], model.head_box)
    model.torso_field = EmptyField(FACE[CORNER], model.torso_box)
    return model


def camera_rays() -> tuple[torch.Tensor, torch.Tensor]:
    v, u = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing="ij")
    dirs = torch.stack([(u - SIZE / 2) / FOCAL, (v - SIZE / 2) / FOCAL, torch.ones_like(u)], -1).reshape(-1, 3)
    return torch.zeros_like(dirs), dirs / dirs.norm(dim=-1, keepdim=True)


def project(canonical: torch.Tensor) -> torch.Tensor:
    """Pixel (u, v) of a canonical point with the head at ``DEPTH`` in front of the camera, R = I."""
    x, y, z = canonical[0], -canonical[1], DEPTH - canonical[2]
    return torch.stack([FOCAL * x / z + SIZE / 2, FOCAL * y / z + SIZE / 2])


def render_alpha(model: SubjectNeRF, warp: LandmarkWarp | None) -> torch.Tensor:
    origins, dirs = camera_rays()
    pose = head_from_world(torch.eye(3)[None], torch.tensor([[0.0, 0.0, DEPTH]]))
    with torch.inference_mode():
        _, alpha = render_frame(model, origins, dirs, pose, torch.zeros(1, 16), torch.zeros(1, 6), warp=warp)
    return alpha.reshape(SIZE, SIZE)


def centroid(alpha: torch.Tensor) -> torch.Tensor:
    v, u = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing="ij")
    return torch.stack([(alpha * u).sum(), (alpha * v).sum()]) / alpha.sum()


@pytest.mark.parametrize("delta", [(0.15, 0.10, 0.0), (-0.08, 0.16, 0.05)])
def test_a_landmark_displacement_moves_the_rendered_feature_by_the_projected_pixels(delta):
    model = stub_model()
    target = FACE + smooth_displacement(CORNER, delta)
    before = render_alpha(model, None)
    after = render_alpha(model, LandmarkWarp.fit(FACE, target))
    assert float(before.max()) > 0.9 and float(after.max()) > 0.9       # the blob is rendered, opaque
    expected = project(target[CORNER]) - project(FACE[CORNER])
    moved = centroid(after) - centroid(before)
    assert float(expected.norm()) > 3.0                                 # a visible move (pixels)
    assert float((moved - expected).norm()) < 0.5, (moved, expected)


@pytest.mark.parametrize("depth_miss", [-0.3, 0.3])
def test_a_feature_off_its_landmarks_depth_still_moves_the_full_projected_pixels(depth_miss):
    """Tracked landmark depths are rough: skin a few tenths behind or in front of its landmark must
    still move with it (an isotropic kernel moves it by about 40 % less)."""
    delta = (0.15, 0.10, 0.0)
    target = FACE + smooth_displacement(CORNER, delta)
    skin = FACE[CORNER] + torch.tensor([0.0, 0.0, depth_miss])
    moved = {}
    for name, config in (("default", WarpConfig()), ("isotropic", WarpConfig(depth_width=None))):
        model = stub_model()
        model.head_field = BlobField(skin, model.head_box)
        before = render_alpha(model, None)
        moved[name] = centroid(render_alpha(model, LandmarkWarp.fit(FACE, target, config))) - centroid(before)
    expected = project(skin + target[CORNER] - FACE[CORNER]) - project(skin)
    assert float((moved["default"] - expected).norm()) < 0.1 * float(expected.norm()), (moved, expected)
    assert float(moved["isotropic"].norm()) < 0.8 * float(expected.norm()), (moved, expected)


def test_zero_displacement_renders_bit_identically():
    model = stub_model()
    same = FrameLike(FACE[None], FACE[None].clone())
    assert same.warp(0) is None
    assert torch.equal(render_alpha(model, same.warp(0)), render_alpha(model, None))



# -- symmetry: the one-sided brow smear (notes/s5/brow_report.md) ---------------------------

def _mirror(points: torch.Tensor) -> torch.Tensor:
    """A canonical landmark set (or displacement) mirrored: x -> -x, left and right points swapped."""
    from backend.data.landmark_map import IBUG68_MIRROR
    return points[list(IBUG68_MIRROR)] * torch.tensor([-1.0, 1.0, 1.0])


def test_a_mirrored_displacement_gives_the_mirrored_warp():
    """On the (symmetric) mean face, a one-sided brow raise and its mirror image give mirror-image warps,
    brow band and ridge included: the warp has no handedness in canonical space."""
    assert torch.allclose(_mirror(FACE), FACE, atol=1e-5)
    raise_ = torch.zeros_like(FACE)
    raise_[17:22] = torch.tensor([0.01, 0.14, 0.05])          # the subject's right brow up, a little forward
    raise_[22:27] = torch.tensor([-0.02, 0.09, 0.03])         # the left one less
    raise_[[37, 38]] = torch.tensor([0.0, 0.05, 0.0])
    warp = LandmarkWarp.fit(FACE, FACE + raise_)
    mirrored = LandmarkWarp.fit(FACE, FACE + _mirror(raise_))
    spread = torch.tensor([0.8, 0.8, 1.0])
    points = FACE.mean(0) + torch.randn(4000, 3, generator=torch.Generator().manual_seed(2)) * spread
    flip = torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(mirrored(points * flip), warp(points) * flip, atol=1e-5)
    assert torch.allclose(mirrored.interpolate(points * flip), warp.interpolate(points) * flip, atol=1e-4)


def two_brow_render(hair_depth: float, yaw_degrees: float, warp: LandmarkWarp | None) -> torch.Tensor:
    """Pixel centroids ``[2, 2]`` of a blob on each brow's hair (``hair_depth`` behind the brow landmarks: a subject
    NeRF's brow lies up to a few tenths off its tracked depth), the head turned by ``yaw_degrees``."""
    angle = torch.tensor(yaw_degrees * np.pi / 180)
    c, s_ = torch.cos(angle), torch.sin(angle)
    rotation = torch.tensor([[c, 0.0, s_], [0.0, 1.0, 0.0], [-s_, 0.0, c]])
    pose = head_from_world(rotation[None], torch.tensor([[0.0, 0.0, DEPTH]]))
    origins, dirs = camera_rays()
    out = []
    for brow in (19, 24):
        model = stub_model()
        model.head_field = BlobField(FACE[brow] - torch.tensor([0.0, 0.08, hair_depth]), model.head_box)
        with torch.inference_mode():
            _, alpha = render_frame(model, origins, dirs, pose, torch.zeros(1, 16), torch.zeros(1, 6), warp=warp)
        out.append(centroid(alpha.reshape(SIZE, SIZE)))
    return torch.stack(out)


def test_both_brows_move_by_the_same_pixels_on_a_turned_head():
    """Both brows raised by 0.1: on a head turned 20 degrees, with the brow hair 0.4 behind its landmarks, each brow's
    hair moves up by the same pixels (within 10 %), and the mirrored turn gives the mirrored picture. (Reading one
    displacement per ray where it crosses the landmarks' depth, tried for the default subject's one-sided smear,
    fails this: 2.58 vs 2.87 px, the crossing is 0.15 off the brow sideways.)"""
    target = FACE.clone()
    target[17:27, 1] += 0.1
    warp = LandmarkWarp.fit(FACE, target)
    moves = {}
    for yaw in (20.0, -20.0):
        moves[yaw] = two_brow_render(0.4, yaw, warp) - two_brow_render(0.4, yaw, None)
    up = -moves[20.0][:, 1]                                       # image v grows downwards
    assert float(up.min()) > 2.0, moves                           # a visible raise (0.1 x 30 px per unit)
    assert float((up[0] - up[1]).abs()) < 0.1 * float(up.mean()), moves
    mirrored = moves[-20.0].flip(0) * torch.tensor([-1.0, 1.0])
    assert torch.allclose(mirrored, moves[20.0], atol=0.1), moves


class FrameLike:
    """The two landmark tracks FrameConditions carries for the warp."""

    def __init__(self, source, target):
        from backend.render.subject_dataset import FrameConditions
        self.conditions = FrameConditions(torch.zeros(1, 16), torch.zeros(1, 6), torch.zeros(1, 3, 4),
                                          torch.zeros(1), warp_source=source, warp_target=target)

    def warp(self, index):
        return self.conditions.warp(index)


# -- what the code renders and what the warp carries ---------------------------------------

SMILE = smooth_displacement(CORNER, (0.1, 0.1, 0.0))


def fitted_code() -> LandmarkCode:
    """A code fitted on 'training frames' that hold a little of SMILE (up to 1x) and some noise."""
    g = torch.Generator().manual_seed(1)
    amount = torch.rand(200, 1, 1, generator=g) * 2 - 1
    speech = FACE + amount * SMILE + 0.005 * torch.randn(200, 68, 3, generator=g)
    return LandmarkCode(16).fit(speech)


def test_warp_mode_renders_the_neutral_code_and_warps_emotion_minus_neutral():
    code = fitted_code()
    neutral = FACE[None].repeat(3, 1, 1)
    emotional = neutral + smooth_displacement(CORNER, (0.1, 0.1, 0.0))
    split = expression_landmarks(code, emotional, neutral, ExpressionConfig(limit_mouth=False, emotion_gain=()))
    assert torch.equal(split.code_landmarks, neutral)
    assert torch.allclose(split.target - split.source, emotional - neutral, atol=1e-6)
    coded = expression_landmarks(code, emotional, neutral, ExpressionConfig(mode="code", emotion_gain=()))
    assert torch.equal(coded.code_landmarks, emotional) and coded.source is None
    # with the emotion gain, code mode warps only the gain's extra on brows and eyes
    gained = expression_landmarks(code, emotional, neutral, ExpressionConfig(mode="code"))
    assert torch.equal(gained.code_landmarks, emotional) and torch.equal(gained.source, emotional)
    extra = gained.target - gained.source
    from backend.render.deformation import GAIN_REGIONS
    others = [i for i in range(68) if i not in GAIN_REGIONS["brows"] + GAIN_REGIONS["eyes"]]
    assert float(extra[:, others].abs().max()) == 0.0 and float(extra.abs().max()) > 0
    assert expression_landmarks(code, neutral, neutral, ExpressionConfig(mode="code")).source is None



def test_code_regions_put_their_emotion_in_the_code_and_leave_keyed_neutral_alone():
    """``code_regions=("brows",)``: the code renders the brows' emotion (the rest stays neutral), the warp carries
    what the code does not render (here the brows' gain extra and the mouth's emotion); keyed neutral is the
    default's."""
    from backend.render.deformation import GAIN_REGIONS
    code = fitted_code()
    neutral = FACE[None].repeat(3, 1, 1)
    emotional = neutral + smooth_displacement(CORNER, (0.1, 0.1, 0.0))
    brows = list(GAIN_REGIONS["brows"])
    emotional[:, brows, 1] += 0.1
    config = ExpressionConfig(limit_mouth=False, carry="none", code_regions=("brows",), emotion_gain=(("brows", 1.6),))
    split = expression_landmarks(code, emotional, neutral, config)
    others = [i for i in range(68) if i not in brows]
    assert torch.equal(split.code_landmarks[:, brows], emotional[:, brows])
    assert torch.equal(split.code_landmarks[:, others], neutral[:, others])
    carried = split.target - split.source
    assert torch.allclose(carried[:, brows, 1], torch.full((3, len(brows)), 0.06), atol=1e-5)   # gain 1.6: 0.16 - 0.1
    assert torch.allclose(carried[:, others], (emotional - neutral)[:, others], atol=1e-6)
    for carry in ("none", "clamped"):
        plain = expression_landmarks(code, neutral, neutral, ExpressionConfig(carry=carry))
        keyed = expression_landmarks(code, neutral, neutral, ExpressionConfig(carry=carry, code_regions=("brows",)))
        assert all(torch.equal(a, b) for a, b in zip((plain.code_landmarks, plain.source, plain.target),
                                                     (keyed.code_landmarks, keyed.source, keyed.target)))
    with pytest.raises(ValueError, match="code_regions"):
        ExpressionConfig(code_regions=("ears",))

def test_emotion_gain_scales_the_emotion_of_its_regions_only_and_leaves_neutral_alone():
    from backend.render.deformation import GAIN_REGIONS
    code = fitted_code()
    neutral = FACE[None].repeat(2, 1, 1) + 0.01 * torch.randn(2, 68, 3, generator=torch.Generator().manual_seed(2))
    emotion = 0.05 * torch.randn(2, 68, 3, generator=torch.Generator().manual_seed(3))
    brows = list(GAIN_REGIONS["brows"])
    emotion[0, brows, 1] = emotion[0, brows, 1].abs()                   # raised brows in frame 0 ...
    emotion[1, brows, 1] = -emotion[1, brows, 1].abs()                  # ... lowered in frame 1
    config = ExpressionConfig(limit_mouth=False, carry="none", emotion_gain=(("brows", 1.6), ("eyes", 1.5)))
    split = expression_landmarks(code, neutral + emotion, neutral, config)
    carried = split.target - split.source
    eyes = list(GAIN_REGIONS["eyes"])
    rest = [i for i in range(68) if i not in brows + eyes]
    assert torch.allclose(carried[0, brows], 1.6 * emotion[0, brows], atol=1e-6)
    assert torch.allclose(carried[1, brows], emotion[1, brows], atol=1e-6)   # a lowered brow is not amplified
    assert torch.allclose(carried[:, eyes], 1.5 * emotion[:, eyes], atol=1e-6)
    assert torch.allclose(carried[:, rest], emotion[:, rest], atol=1e-6)
    keyed_neutral = expression_landmarks(code, neutral.clone(), neutral, config)
    assert torch.equal(keyed_neutral.target, keyed_neutral.source)      # no emotion, nothing to amplify
    assert dict(ExpressionConfig().emotion_gain) == {"brows": 1.6, "eyes": 1.5}
    assert expression_config({"expression": {"emotion_gain": {"brows": 1.2}}}).emotion_gain == (("brows", 1.2),)
    for bad in ({"emotion_gain": {"nose": 1.2}}, {"emotion_gain": {"brows": -1}}):
        with pytest.raises(ValueError, match="emotion_gain"):
            ExpressionConfig(**{"emotion_gain": tuple(bad["emotion_gain"].items())})


def test_the_part_clamping_removes_is_carried_by_the_warp():
    code = fitted_code()
    far = FACE[None] + 4.0 * SMILE                  # far outside the code's range (training: up to 1x)
    kept = expression_landmarks(code, far, None, ExpressionConfig(carry="clamped", limit_mouth=False))
    carried = kept.target - kept.source
    assert float(carried.norm(dim=-1).max()) > 0.2
    # what the warp carries points the same way as the excess (no more than 1.5x of SMILE fits in range)
    cosine = torch.nn.functional.cosine_similarity(carried.flatten(), SMILE.flatten(), dim=0)
    assert float(cosine) > 0.95
    dropped = expression_landmarks(code, far, None, ExpressionConfig(carry="none", limit_mouth=False))
    assert torch.equal(dropped.source, dropped.target)        # no warp: today's clamping
    inside = expression_landmarks(code, FACE[None], None, ExpressionConfig(carry="clamped"))
    assert torch.equal(inside.source, inside.target)          # in range: nothing to carry


def test_expression_config_from_subject_json():
    assert expression_config({}).mode == "warp"
    assert expression_config({"expression": "code"}).mode == "code"
    cfg = expression_config({"expression": {"mode": "warp", "carry": "none", "warp": {"width": 0.4}}})
    assert cfg.carry == "none" and cfg.warp == WarpConfig(width=0.4)
    assert expression_config({"expression": {"code_regions": ["brows"]}}).code_regions == ("brows",)
    for bad in ("smile", {"mode": "warp", "carry": "all"}, {"wobble": 1}, 3):
        with pytest.raises(ValueError, match="expression"):
            expression_config({"expression": bad})


# -- the shipped default subject under the shipped LDM (slow) --------------------------------

@pytest.mark.slow
def test_default_subject_smiles_where_the_ldm_moves_the_mouth_corners():
    """FaceMesh (an independent tracker) finds the rendered mouth corners moved along the projected
    LDM happy displacement: at least 40 % of it with the warp, and at least 1.5x what the clamped
    code alone (the renderer before the warp) shows."""
    mp = pytest.importorskip("mediapipe")
    from backend.motion.generator import apply_emotion
    from backend.motion.model_io import load_motion_models
    from backend.render.conditions import FLIP as CANONICAL_FLIP
    from backend.render.inference import SubjectRenderer
    from backend.subjects import SubjectStore
    from bridge.emotions import EMOTION_INDEX

    renderer = SubjectRenderer(SubjectStore().path("default"))
    track = np.load(renderer.dir / "track.npz")
    camera = renderer.camera_for(None, (256, 256))
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    models = load_motion_models()

    def corners(conditions) -> np.ndarray:
        out = renderer.render_premultiplied(camera, conditions, 0).numpy()
        image = ((out[..., :3] + (1 - out[..., 3:]) * np.array([0.1, 0.4, 0.9])) * 255).clip(0, 255)
        face = mesh.process(image.astype(np.uint8)).multi_face_landmarks[0].landmark
        return np.array([[face[i].x * camera.width, face[i].y * camera.height] for i in (61, 291)])

    along = {"code": [], "warp": []}
    first = int(renderer.info["split"]["heldout"][0])
    for frame in (first + 20, first + 60):
        part = slice(frame, frame + 1)
        lm, rot, trans = track["landmarks"][part], track["rotation"][part], track["translation"][part]
        weights = np.zeros((1, 8), np.float32)
        weights[0, EMOTION_INDEX["happy"]] = 1
        happy = apply_emotion(models, lm, weights, np.ones(1, np.float32))
        neutral_r, happy_r = renderer.retarget(lm, lm), renderer.retarget(happy, lm)
        to_world = lambda c: c @ (rot[0] @ CANONICAL_FLIP.numpy()).T + trans[0]   # noqa: E731
        expected = (camera.project(to_world(happy_r[0]))[0] - camera.project(to_world(neutral_r[0]))[0])[[48, 54]]
        renderer.expression = ExpressionConfig(mode="warp")
        base = corners(renderer.conditions(neutral_r, rot, trans, neutral_landmarks=neutral_r).conditions)
        for mode in along:
            renderer.expression = ExpressionConfig(mode=mode)
            moved = corners(renderer.conditions(happy_r, rot, trans, neutral_landmarks=neutral_r).conditions) - base
            norms = np.linalg.norm(expected, axis=-1)
            along[mode] += list((moved * expected).sum(-1) / norms ** 2)
    warp, code = float(np.mean(along["warp"])), float(np.mean(along["code"]))
    assert warp >= 0.4, along
    assert warp >= 1.5 * code, along
