"""siteml: site-aware experiment and model management for industrial-safety detectors."""

__version__ = "0.1.0"
