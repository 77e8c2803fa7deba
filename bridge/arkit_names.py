"""ARKit's 52 face blendshape names and the Live Link Face CSV columns.

Order: as Epic's Live Link Face app writes its CSV (checked against several
public Live Link Face CSV readers/writers): eyes (left, then right), jaw, mouth,
brows, cheeks, nose, tongue. Note ``jawRight`` before ``jawLeft`` and
``mouthRight`` before ``mouthLeft`` in that file, unlike Unreal's
``EARFaceBlendShape`` enum. Names are Apple's (``eyeBlinkLeft``); the CSV
capitalises the first letter (``EyeBlinkLeft``). "Left" is the subject's own left.
"""
from __future__ import annotations

ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawRight", "jawLeft", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight", "tongueOut",
)
NUM_SHAPES = len(ARKIT_NAMES)
ARKIT_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_NAMES)}

#: the 9 pose columns that follow the 52 shapes in a Live Link Face CSV
POSE_COLUMNS: tuple[str, ...] = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                                 "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
#: Live Link Face writes 61 in its BlendShapeCount column (52 shapes + 9 pose values)
BLEND_SHAPE_COUNT = NUM_SHAPES + len(POSE_COLUMNS)


def csv_name(name: str) -> str:
    """``eyeBlinkLeft`` -> ``EyeBlinkLeft`` (the CSV's spelling)."""
    return name[:1].upper() + name[1:]


LIVE_LINK_FACE_HEADER: tuple[str, ...] = ("Timecode", "BlendShapeCount",
                                          *(csv_name(n) for n in ARKIT_NAMES), *POSE_COLUMNS)
