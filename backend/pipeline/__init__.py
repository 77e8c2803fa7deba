"""The inference pipeline: a ``generate`` job runs a list of stages (see ``base.py``)."""
