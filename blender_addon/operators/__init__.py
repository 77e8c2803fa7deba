"""Operators: generate/cancel (with the polling timer), key emotion, connect, anchor, export."""
