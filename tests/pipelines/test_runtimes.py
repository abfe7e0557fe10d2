"""Timing helpers shared by the quantization speed check and the figure scripts."""

from siteml.pipelines.runtimes import REWARM, interleaved_latencies_ms


def test_interleaved_timing_takes_turns_so_that_noise_hits_every_model():
    order: list[str] = []
    calls = {"source": lambda: order.append("s"), "variant": lambda: order.append("v")}
    times = interleaved_latencies_ms(calls, warmup=2, iterations=7, rounds=3)
    assert {label: len(values) for label, values in times.items()} == {"source": 7,
                                                                        "variant": 7}
    assert all(value >= 0 for values in times.values() for value in values)
    # turns of 3, 2 and 2 timed calls; warm-up before the first turn, REWARM before the others
    turns = [(2, 3), (REWARM, 2), (REWARM, 2)]
    assert "".join(order) == "".join("s" * (untimed + timed) + "v" * (untimed + timed)
                                     for untimed, timed in turns)


def test_fewer_iterations_than_rounds_leave_out_the_empty_turns():
    order: list[str] = []
    calls = {"source": lambda: order.append("s"), "variant": lambda: order.append("v")}
    times = interleaved_latencies_ms(calls, warmup=0, iterations=2, rounds=5)
    assert [len(times["source"]), len(times["variant"])] == [2, 2]
    assert "".join(order) == "sv" + "s" * (REWARM + 1) + "v" * (REWARM + 1)
