"""Which of a mesh's shape keys are which ARKit blendshape (no bpy here).

Matching ignores case and separators and accepts the spellings rigs use:
Apple's own (``eyeBlinkLeft``: FaceIt, VRM/Ready Player Me, Audio2Face exports),
capitalised (``EyeBlinkLeft``: Live Link Face), snake case (``eye_blink_left``),
short sides (``eyeBlink_L``, ``EyeBlink.R``, ``eyeBlinkL``) and common prefixes
(``bs_``, ``ARKit_``, ``blendShape.``, ``blendShape1.``, ``shape_``, ``SK_``,
``morph_``, ``facs_``).
"""
from __future__ import annotations

import re

PREFIXES = ("blendshapes", "blendshape", "arkit", "shape", "morph", "facs", "bs", "sk")
_SEPARATORS = re.compile(r"[^0-9a-z]+")


def _squash(name: str) -> str:
    return _SEPARATORS.sub("", name.lower())


def _candidates(name: str) -> list[str]:
    """Normalised spellings to try for one shape key name, most literal first."""
    lowered = name.lower()
    # "blendShape1.eyeBlinkLeft" (glTF/FBX exports): keep what follows the last dot when the rest is a prefix
    parts = [p for p in re.split(r"[.:|]", lowered) if p]
    stems = [_squash(lowered)] + ([_squash(parts[-1])] if len(parts) > 1 else [])
    out: list[str] = []
    for stem in stems:
        forms = [stem]
        for prefix in PREFIXES:
            if stem.startswith(prefix) and len(stem) > len(prefix) + 2:
                rest = stem[len(prefix):].lstrip("0123456789")
                forms.append(rest)
        for form in forms:
            out.append(form)
            if form.endswith("l"):
                out.append(form[:-1] + "left")
            if form.endswith("r"):
                out.append(form[:-1] + "right")
    return out


def match_shape_keys(key_names, arkit_names) -> tuple[dict[str, str], list[str], list[str]]:
    """Map shape key names to ARKit names.

    Returns ``(matched, unmatched_keys, missing_arkit)``: ``matched`` maps a shape key name to
    its ARKit name (the first key wins when two keys spell the same shape); ``unmatched_keys``
    are the keys that are no ARKit shape (``Basis`` is skipped); ``missing_arkit`` are the ARKit
    names no key matched.
    """
    lookup = {_squash(n): n for n in arkit_names}
    matched: dict[str, str] = {}
    taken: set[str] = set()
    unmatched: list[str] = []
    for key in key_names:
        if key.lower() in {"basis", "reference"}:
            continue
        found = next((lookup[c] for c in _candidates(key) if c in lookup), None)
        if found is None or found in taken:
            unmatched.append(key)
            continue
        matched[key] = found
        taken.add(found)
    missing = [n for n in arkit_names if n not in taken]
    return matched, unmatched, missing
