"""Datasets: the YOLO folder layout, DVC folder hashes, and synthetic site data."""
