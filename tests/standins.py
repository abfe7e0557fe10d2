"""Stand-in trainings for the tests and benchmark smoke tests that need siteml as its own
process (a signal, a server going away, HTTP overhead) but not a real training:

    python -m tests.standins until-killed SCENARIO...  # says "pipeline started", then waits
    python -m tests.standins epochs SCENARIO...        # an epoch every 0.5 s, as training logs
    python -m tests.standins swallow-sigint SCENARIO...   # a Ctrl-C lost in a finalizer, then
    python -m tests.standins swallow-sigterm SCENARIO...  # ... an epoch and a model
    python -m tests.standins at-creation SCENARIO...   # Ctrl-C while the run is being created

(from the repository root, or with it on PYTHONPATH).
"""

import signal
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
    return final(tracker, EPOCHS)


def final(tracker, epochs_run: int = 1) -> PipelineResult:
    """The final validation and weights, as the training pipeline returns them."""
    weights = tracker.workdir / "best.pt"
    weights.write_bytes(b"weights")
    result = siteml.pipelines.train.final_metrics({keys.VAL_MAP50: 1.0}, epochs_run)
    return PipelineResult(result, ProducedModel(weights), keys.HEADLINE["train"])


class _Finalizer:
    """Receives a signal in its ``__del__``, as a torch tensor's or a weakref's finalizer may:
    the exception its handler raises there is printed and dropped by Python."""

    def __init__(self, signum: int):
        self.signum = signum

    def __del__(self):
        signal.raise_signal(self.signum)


def swallowing(signum: int):
    """A training that gets ``signum`` where its exception is swallowed, then trains on (an
    epoch's metrics) and returns a model."""

    def train(scenario, tracker):
        _Finalizer(signum)  # dropped at once: its __del__ runs here
        tracker.log_metrics({"train/box_loss": 1.0}, step=1)
        return final(tracker)

    return train


def at_creation() -> None:
    """Ctrl-C while the run is being created: the run exists, its recorder is not returned."""
    from siteml.tracking.runs import RunRecorder

    log_params = RunRecorder.log_params

    def interrupted(recorder, params):
        signal.raise_signal(signal.SIGINT)
        log_params(recorder, params)

    RunRecorder.log_params = interrupted


STAND_INS = {"until-killed": until_killed, "epochs": epochs,
             "swallow-sigint": swallowing(signal.SIGINT),
             "swallow-sigterm": swallowing(signal.SIGTERM),
             "at-creation": lambda scenario, tracker: final(tracker)}


def use(mode: str) -> None:
    """Replace the training pipeline of this process by stand-in ``mode``."""
    siteml.pipelines.train.run = STAND_INS[mode]
    if mode == "at-creation":
        at_creation()


if __name__ == "__main__":
    mode, *scenarios = sys.argv[1:]
    use(mode)
    sys.argv = ["siteml", "run", *scenarios]
    main()
