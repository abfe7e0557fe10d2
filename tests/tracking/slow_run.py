"""Helper process for the SIGTERM test: `siteml run` with a pipeline that waits to be killed."""

import sys
import time

import siteml.pipelines.train
from siteml.cli import main


def slow(scenario, tracker):
    tracker.log_metrics({"train/box_loss": 1.0}, step=0)
    print("pipeline started", file=sys.__stdout__, flush=True)  # stdout goes to stderr in a run
    time.sleep(120)
    raise AssertionError("was not terminated")


siteml.pipelines.train.run = slow
sys.argv = ["siteml", "run", *sys.argv[1:]]
main()
