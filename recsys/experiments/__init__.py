"""Safe rollout and measurement: attribution, off-policy evaluation, the replay simulator,
batch export and experiment arms."""
