"""The OpenVINO call the benchmark times: OpenVINO's own latency of it, as benchmark_app reads
it (issue 26), on a model of two convolutions built here (no export, no training)."""

import time

import numpy as np

from siteml.backends import openvino
from siteml.backends.base import LoadOptions
from tests.conftest import needs

needs("openvino", "quantize")


def test_openvino_times_the_inference_by_its_own_clock_inside_the_python_call(tmp_path):
    ov = openvino.offline_openvino()
    from openvino import opset13 as ops

    image = ops.parameter([1, 3, 32, 32], np.float32, name="images")
    weights = ops.constant(np.full((8, 3, 3, 3), 0.1, np.float32))
    layer = ops.relu(ops.convolution(image, weights, [1, 1], [1, 1], [1, 1], [1, 1]))
    conv = ops.convolution(layer, ops.constant(np.full((4, 8, 1, 1), 0.1, np.float32)),
                           [1, 1], [0, 0], [0, 0], [1, 1])
    ov.save_model(ov.Model([conv], [image], "two-convs"), str(tmp_path / "model.xml"))
    frame = np.ones((1, 3, 32, 32), np.float32)
    loaded = openvino.load(tmp_path / "model.xml", frame, LoadOptions())
    for _ in range(50):
        start = time.perf_counter()
        own = loaded.infer()
        wall = (time.perf_counter() - start) * 1000
        assert 0 < own <= wall  # measured within the call: the Python around it left out
    assert loaded.predict(frame).shape == (1, 4, 32, 32)
    loaded.stream(frame)()  # a camera's call, timed by the caller
