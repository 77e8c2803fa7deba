"""EmoGene backend: data preparation, models, training, inference pipeline and server."""
