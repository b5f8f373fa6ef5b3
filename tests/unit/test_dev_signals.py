"""SIGINT and SIGTERM as an interrupt (advocacy_dev.devstack.signals): the dev stack's and the
benchmarks' one handling."""

from __future__ import annotations

import os
import signal

import pytest

from advocacy_dev.devstack.signals import signals_as_interrupt


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_raises_the_next_calls_while_stopping_and_the_handlers_come_back(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    later: list[int] = []
    with pytest.raises(KeyboardInterrupt), signals_as_interrupt(while_stopping=later.append):
        try:
            os.kill(os.getpid(), sig)
        finally:
            os.kill(os.getpid(), sig)  # while stopping: noted, not raised
    assert later == [sig]
    assert signal.getsignal(sig) is before


def test_without_while_stopping_every_signal_raises() -> None:
    with signals_as_interrupt():
        for _ in range(2):
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
