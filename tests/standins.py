"""Stand-in trainings for the tests and benchmark smoke tests that need siteml as its own
process (a signal, a server going away, HTTP overhead) but not a real training:

    python -m tests.standins until-killed SCENARIO...  # says "pipeline started", then waits
    python -m tests.standins epochs SCENARIO...        # an epoch every 0.5 s, as training logs

(from the repository root, or with it on PYTHONPATH).
"""

import sys
import time

import siteml.pipelines.train
from siteml.cli import main
from siteml.core import keys
from siteml.core.models import PipelineResult, ProducedModel

EPOCHS, EPOCH_S = 8, 0.5


def until_killed(scenario, tracker):
    tracker.log_metrics({"train/box_loss": 1.0}, step=0)
    print("pipeline started", file=sys.__stdout__, flush=True)  # stdout goes to stderr in a run
    time.sleep(120)
    raise AssertionError("was not terminated")


def epochs(scenario, tracker):
    """Each epoch's time and val mAP50 at its step, then the final validation and weights, as
    the training pipeline logs them."""
    for epoch in range(1, EPOCHS + 1):
        time.sleep(EPOCH_S)
        tracker.log_metrics({keys.EPOCH_TIME: EPOCH_S, keys.VAL_MAP50: epoch / EPOCHS},
                            step=epoch)
    weights = tracker.workdir / "best.pt"
    weights.write_bytes(b"weights")
    final = siteml.pipelines.train.final_metrics({keys.VAL_MAP50: 1.0}, epochs_run=EPOCHS)
    return PipelineResult(final, ProducedModel(weights), keys.HEADLINE["train"])


STAND_INS = {"until-killed": until_killed, "epochs": epochs}


def use(mode: str) -> None:
    """Replace the training pipeline of this process by stand-in ``mode``."""
    siteml.pipelines.train.run = STAND_INS[mode]


if __name__ == "__main__":
    mode, *scenarios = sys.argv[1:]
    use(mode)
    sys.argv = ["siteml", "run", *scenarios]
    main()
