"""Ctrl-C and SIGTERM as a recorded request (``core.interrupts``), on this process's own
signals."""

import signal

import pytest

from siteml.core import interrupts


def test_a_signal_is_recorded_and_raised_once_and_ends_with_its_block():
    with interrupts.handled():
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)  # recorded already: not raised again
        assert interrupts.requested() == 130
        with pytest.raises(KeyboardInterrupt):  # raised again where it is checked
            interrupts.raise_if_requested()
    assert interrupts.requested() is None
    interrupts.raise_if_requested()  # the next run starts without it
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_while_deferred_is_raised_at_the_end_of_the_block():
    reached = []
    with interrupts.handled():
        with pytest.raises(interrupts.Terminated), interrupts.deferred():
            signal.raise_signal(signal.SIGTERM)
            reached.append("the rest of the block")
        assert interrupts.requested() == 143
    assert reached == ["the rest of the block"]
