"""Subject renderer: a landmark-conditioned head NeRF plus a torso NeRF, in pure PyTorch.

Layout, lower layers first (nothing imports a layer above it; inference never imports training):
- parts: ``encodings`` (hash grid, frequency), ``fields`` (head/torso fields, no rays), ``sampling``
  (ray-box bounds, occupancy grids), ``volume_rendering``, ``compositing`` (over, straight alpha),
  ``camera`` (Blender camera -> rays), ``conditions``, ``deformation`` (expression warp);
- ``model`` (SubjectNeRF: samples rays and renders);
- ``frame_render`` (checkpoint stem, training camera, per-frame conditions, one frame's rays),
  shared by both sides below;
- inference: ``inference`` (SubjectRenderer), ``screen_region``, ``super_resolution``/``sr_plates``,
  ``stage`` (RenderStage for generate jobs);
- training: ``subject_dataset`` (a prepared subject folder), ``train``, ``sr_data``/``train_sr``,
  ``evaluate``/``evaluate_plates``;
- preparation: ``tracking`` (the one user of the face-tracking API), ``prepare`` (subject folder
  from a video).
The subject on disk (finding it by name, reading ``subject.json``) is ``backend.subjects``.
"""
