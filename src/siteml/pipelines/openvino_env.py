"""Importing OpenVINO and NNCF so that they never send telemetry.

OpenVINO's model converter and NNCF report usage through ``openvino_telemetry`` unless the user
ran ``opt_in_out --opt_out``, which writes ``~/intel/openvino_telemetry``. siteml declines for its
own process instead, without writing the user's home: the consent check answers "declined", so
neither tool sends anything or writes its statistics file. NNCF's INFO log lines go to stdout,
which carries ``--json`` output, so its level is raised to WARNING; the "no CUDA runtime" warning
torch logs when NNCF imports it on a CPU machine is silenced.
"""

from __future__ import annotations

import logging
from types import ModuleType

from siteml.extras import require


def offline_openvino() -> ModuleType:
    """Import OpenVINO with its telemetry declined for this process; return the module.

    The decline comes first: importing ``openvino`` imports its converter, which sends an event.
    """
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # no telemetry package, nothing to decline
        pass
    else:
        OptInChecker.check = lambda self, *args, **kwargs: ConsentCheckResult.DECLINED
    return require("openvino", "quantize")


def quiet_nncf() -> ModuleType:
    """Import NNCF (telemetry declined) with its log at WARNING; return the module."""
    offline_openvino()
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime"
    nncf = require("nncf", "quantize")
    nncf.set_log_level(logging.WARNING)
    return nncf
