"""Bring finished job results into the scene: the face rig, the plate strip, the take as a whole."""
