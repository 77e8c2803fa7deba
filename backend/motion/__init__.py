"""Motion models: speech -> neutral landmarks (VAE) -> emotional landmarks (LDM) -> head pose, idle, blinks.

Models live in their own modules (``syncnet``, ``audio2motion``, ``ldm``,
``emotion_classifier``) as ``nn.Module``s without I/O; data loading is in
``tracks_data``, training loops in ``training``, inference glue in ``generator``,
the pipeline stage in ``stage`` and metrics in ``metrics`` / ``evaluate``.
"""
