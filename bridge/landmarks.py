"""Names and regions of the 68 iBUG landmarks, shared by the CLI's CSV and the Blender face rig.

Right/left are the subject's own (iBUG 17-21 is the subject's right brow, which
appears on the image's left in a frontal view).
"""
from __future__ import annotations

NUM_LANDMARKS = 68

REGIONS: dict[str, range] = {
    "jaw": range(0, 17),
    "brow_r": range(17, 22),
    "brow_l": range(22, 27),
    "nose_bridge": range(27, 31),
    "nose_base": range(31, 36),
    "eye_r": range(36, 42),
    "eye_l": range(42, 48),
    "lip_outer": range(48, 60),
    "lip_inner": range(60, 68),
}

#: regions that code indexes by name (index with as_slice for a view); MOUTH = outer + inner lips
MOUTH = range(48, 68)
EYE_R = REGIONS["eye_r"]
EYE_L = REGIONS["eye_l"]
JAW = REGIONS["jaw"]
NOSE_BASE = REGIONS["nose_base"]
INNER_LIP = REGIONS["lip_inner"]
#: the brows and eyes (iBUG 17-26, 36-47): where most emotions other than happy show
UPPER_FACE: tuple[int, ...] = (*REGIONS["brow_r"], *REGIONS["brow_l"], *EYE_R, *EYE_L)


def as_slice(region: range) -> slice:
    """``region`` as a slice, so ``points[..., as_slice(EYE_R), :]`` is a view like ``points[..., 36:42, :]``."""
    return slice(region.start, region.stop)


#: regions whose names use two-digit numbering (jaw_00, lip_outer_00)
_TWO_DIGIT = {"jaw", "lip_outer"}


def _names() -> tuple[str, ...]:
    names: list[str] = []
    for region, indices in REGIONS.items():
        width = 2 if region in _TWO_DIGIT else 1
        names += [f"{region}_{i:0{width}d}" for i in range(len(indices))]
    return tuple(names)


LANDMARK_NAMES: tuple[str, ...] = _names()
LANDMARK_INDEX: dict[str, int] = {name: i for i, name in enumerate(LANDMARK_NAMES)}


def region_of(index: int) -> str:
    """The region name of landmark ``index`` (0..67)."""
    for region, indices in REGIONS.items():
        if index in indices:
            return region
    raise IndexError(f"landmark index {index} is outside 0..{NUM_LANDMARKS - 1}")
