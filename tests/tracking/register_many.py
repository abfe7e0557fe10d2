"""Helper process for the concurrency test: register N versions of one model on a server."""

import sys
import tempfile
from pathlib import Path

from siteml.core.models import ProducedModel
from siteml.tracking import model_register
from siteml.tracking.runs import RunRecorder, ensure_experiment, open_client
from siteml.tracking.store import resolve_store

site, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = resolve_store()
client = open_client(store)
experiment_id = ensure_experiment(client, store, site, {"site.path": site}, "concurrency test")
for i in range(count):
    recorder = RunRecorder.start(client, store, experiment_id, f"w{worker}-{i}", {}, {})
    weights = Path(tempfile.mkdtemp()) / "best.pt"
    weights.write_text(f"{worker}-{i}")
    version = model_register.register(
        client, experiment_id=experiment_id, run_id=recorder.run_id,
        model=ProducedModel(weights), name=site.replace("/", ".") + ".ppe", logged_name="ppe",
        model_tags={}, version_tags={"worker": worker, "i": str(i)}, description="")
    recorder.finish("FINISHED")
    print(version.version, flush=True)
