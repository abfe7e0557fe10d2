"""Everything that talks to MLflow; the only package that imports it.

MLflow reads some settings when it is imported, so siteml's defaults for them (bounded
retries, no telemetry, no URL printing on stdout, warnings-only logging) are set here, before
any module of this package imports MLflow. A user's own environment variables win.
"""

from siteml.tracking.store import configure_environment

configure_environment()
