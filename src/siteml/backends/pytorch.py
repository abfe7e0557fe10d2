"""PyTorch: the runtime that trains (through Ultralytics) and that every variant starts from.
Its registered models are Ultralytics ``.pt`` weights; it makes no variants."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from siteml.backends.base import Backend, LoadedModel, LoadOptions, on_cpu
from siteml.core.cores import usable_cores
from siteml.core.extras import require


def load(path: Path, frame: Any, options: LoadOptions) -> LoadedModel:
    """The fused network in inference mode, on every core unless told otherwise."""
    torch = require("torch", "train")
    from ultralytics import YOLO

    threads = options.threads or len(usable_cores())
    torch.set_num_threads(threads)
    target = "cpu" if on_cpu(options.device) else options.device
    net = YOLO(str(path)).model.fuse().eval().to(target)
    synchronize = torch.cuda.synchronize if target.startswith("cuda") else (lambda: None)

    def predict(batch: Any) -> Any:
        with torch.inference_mode():
            return net(torch.from_numpy(batch).to(target))[0].cpu().numpy()

    def stream(frame: Any) -> Callable[[], None]:
        bound = torch.from_numpy(frame).to(target)

        def one() -> None:
            with torch.inference_mode():
                net(bound)
            synchronize()

        return one

    return LoadedModel(stream(frame), predict, stream, {
        "runtime": "pytorch", "runtime_version": torch.__version__, "executed_precision": "f32",
        "threads": str(threads), "device": target})


def with_features(path: Path, frame: Any) -> Callable[[Any], tuple[Any, Any]]:
    """The network as a call on a frame like ``frame`` returning its raw detect-head output and
    its own features: each of the head's input maps averaged over its grid, joined (what the
    detector sees; no other weights fetched). Traced once and run by OpenVINO in f32 where it
    is installed (half PyTorch's time on a CPU, the same outputs to 1e-4), else by PyTorch."""
    torch = require("torch", "train")
    from ultralytics import YOLO

    torch.set_num_threads(len(usable_cores()))
    net = YOLO(str(path)).model.fuse().eval()
    head = net.model[-1]
    head.export, head.format = True, "openvino"  # one output, as Ultralytics exports it
    seen: dict[str, Any] = {}
    head.register_forward_pre_hook(lambda _, inputs: seen.update(maps=inputs[0]))

    class Features(torch.nn.Module):  # type: ignore[misc,name-defined]
        def forward(self, batch: Any) -> tuple[Any, Any]:
            raw = net(batch)
            return raw, torch.cat([grid.mean(dim=(2, 3)) for grid in seen["maps"]], dim=1)

    features, example = Features().eval(), torch.from_numpy(frame)
    with torch.inference_mode():
        features(example)  # the head's anchors, made once before tracing
    if importlib.util.find_spec("openvino") is None:
        def in_pytorch(batch: Any) -> tuple[Any, Any]:
            with torch.inference_mode():
                raw, pooled = features(torch.from_numpy(batch))
            return raw.numpy(), pooled.numpy()
        return in_pytorch
    from siteml.backends.openvino import offline_openvino

    ov = offline_openvino()
    with warnings.catch_warnings():  # the tracer's notes on the head's constant shapes
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(features, example, check_trace=False, strict=False)
    request = ov.Core().compile_model(ov.convert_model(traced, example_input=example), "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}).create_infer_request()

    def in_openvino(batch: Any) -> tuple[Any, Any]:
        out = request.infer({0: batch})
        return out[0], out[1]
    return in_openvino


def missing_device(device: str) -> str | None:
    """PyTorch's CUDA device count decides."""
    count = require("torch", "train").cuda.device_count()
    if int(device.partition(":")[2] or 0) < count:
        return None
    return f"PyTorch finds {count} CUDA device(s) on this machine, so no {device}"


BACKEND = Backend(
    name="pytorch", extra="train", modules=("torch", "ultralytics"),
    packages=("torch", "torchvision"), devices=r"cpu|CPU|cuda(:\d+)?",
    device_names="cpu or cuda[:N]", model_format="ultralytics",
    owns=lambda path: path.suffix == ".pt", globs=("*.pt",), load=load,
    missing_device=missing_device)
