"""The Pareto front of latency against accuracy, and its plot."""

from siteml.core.pareto import pareto_front, plot_pareto
from tests.conftest import needs


def test_front_keeps_the_points_nothing_beats_on_both_axes():
    points = [(4.0, 0.70), (10.0, 0.72), (5.0, 0.69), (20.0, 0.72), (2.0, 0.60)]
    assert pareto_front(points) == [4, 0, 1]  # by latency; (5, .69) and (20, .72) are beaten
    assert pareto_front([]) == []


def test_plot_draws_each_device_and_host_apart(tmp_path):
    needs("matplotlib", "train")
    rows = [{"variant": v, "device": "cpu", "host": h, "p50_ms": p, "map50_95": m, "pareto": f}
            for v, h, p, m, f in [("base", "box-1", 20.0, 0.72, True),
                                  ("openvino_int8", "box-1", 4.0, 0.71, True),
                                  ("openvino_int8", "box-2", 9.0, 0.71, True),
                                  ("onnxruntime_int8", "box-2", 12.0, 0.70, False)]]
    rows.append({"variant": "unscored", "device": "cpu", "host": "box-2", "p50_ms": 1.0,
                 "map50_95": None, "pareto": False})
    path = plot_pareto(rows, tmp_path / "plots" / "pareto.png", "site / ppe")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
