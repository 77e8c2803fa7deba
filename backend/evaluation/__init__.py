"""The evaluation report: every metric from the motion and render evaluations in one place."""
