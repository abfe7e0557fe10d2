"""PyTorch: the runtime that trains (through Ultralytics) and that every variant starts from.
Its registered models are Ultralytics ``.pt`` weights; it makes no variants."""

from __future__ import annotations

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


def with_features(path: Path, threads: int | None = None) -> Callable[[Any], tuple[Any, Any]]:
    """The network on the CPU as a call on an NCHW batch returning its raw detect-head output
    and its own features: each of the head's input maps averaged over its grid, joined (what
    the detector sees, with no other weights fetched)."""
    torch = require("torch", "train")
    from ultralytics import YOLO

    torch.set_num_threads(threads or len(usable_cores()))
    net = YOLO(str(path)).model.fuse().eval()
    seen: dict[str, Any] = {}
    net.model[-1].register_forward_pre_hook(lambda _, inputs: seen.update(maps=inputs[0]))

    def predict(batch: Any) -> tuple[Any, Any]:
        with torch.inference_mode():
            raw = net(torch.from_numpy(batch))[0]
            pooled = torch.cat([grid.mean(dim=(2, 3)) for grid in seen["maps"]], dim=1)
        return raw.numpy(), pooled.numpy()

    return predict


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
