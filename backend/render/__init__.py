"""Subject renderer: a landmark-conditioned head NeRF plus a torso NeRF, in pure PyTorch.

Modules: ``encodings`` (hash grid, frequency), ``fields`` (head/torso fields), ``sampling``
(ray-box bounds, occupancy grids), ``renderer`` (packed volume rendering), ``camera``
(Blender camera -> rays), ``subject_data`` (the one user of the face-tracking API),
``prepare`` (subject folder from a video), ``model`` (SubjectNeRF), ``train``,
``evaluate``, ``inference`` and ``stage`` (RenderStage for generate jobs).
"""
