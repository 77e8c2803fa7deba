"""The stage contract: a ``generate`` job runs a list of stages (see ``base.py``); ``local.py`` runs
them in-process. Which stages run is decided above this package, in ``backend.composition``."""
