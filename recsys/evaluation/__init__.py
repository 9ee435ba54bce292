"""Evaluation: metrics and the leave-one-out protocol."""
