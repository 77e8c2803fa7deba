"""Data preparation: real talking videos -> face/pose/audio tracks at 25 fps.

Modules: ``face_tracking`` (mediapipe FaceMesh -> iBUG points), ``landmark_map``
(the 478 -> iBUG index map), ``canonical`` (mean face, similarity fit, head pose),
``smoothing`` (zero-lag one-euro filter), ``audio`` (decode, log-mel, VAD),
``tracks`` (the track file format), ``datasets`` (clip discovery), ``prepare``
(the batch driver behind ``emogene prepare``) and ``preview`` (contact sheets).
"""
