"""One module per ``emogene`` command: ``add_arguments(parser)`` and ``run(args) -> int``."""
