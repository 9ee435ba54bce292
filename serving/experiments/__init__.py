"""Experiments: arms, assignment, ramps and attribution of events to lists."""
