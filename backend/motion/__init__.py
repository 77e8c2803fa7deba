"""Motion models: speech -> neutral landmarks (speech-motion model) -> emotional landmarks (an
emotion deformer, the LDM by default) -> head pose, idle, blinks.

Models live in their own modules (``syncnet``, ``speech_motion``, ``ldm``,
``emotion_classifier``) as ``nn.Module``s without I/O. ``model_specs`` is the one table of
them (CLI target, checkpoint stem, classes, training recipe); ``model_io`` saves/loads by
it; data loading is in ``tracks_data``, the shared loop ``fit`` and the trainers in
``training`` (+ ``a2m_training``, ``ldm_training``), one recipe per model in
``train_recipes``; inference glue in ``generator``, the emotion seam in
``emotion_deformer``, the pipeline stage in ``stage`` and metrics in ``metrics`` /
``evaluate``.
"""
