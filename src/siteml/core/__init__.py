"""The bottom layer: pure contracts (names, model references, the models a run produces and
reads, MLflow key names) and small helpers; imports nothing of siteml above it."""
