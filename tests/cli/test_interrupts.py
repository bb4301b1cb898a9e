"""Ctrl-C held back while a batch is printed (in this process: SIGINT sent to itself)."""

from __future__ import annotations

import signal

import pytest

from vmctl.cli.interrupts import Interrupts


def test_a_ctrl_c_inside_a_held_block_is_raised_at_its_end() -> None:
    interrupts = Interrupts()
    done = []
    with interrupts.installed(), pytest.raises(KeyboardInterrupt):
        with interrupts.held():
            signal.raise_signal(signal.SIGINT)
            done.append("the rest of the block")
        done.append("after the block")
    assert done == ["the rest of the block"]


def test_a_second_ctrl_c_inside_a_held_block_is_raised_at_once() -> None:
    interrupts = Interrupts()
    done = []
    with interrupts.installed(), pytest.raises(KeyboardInterrupt), interrupts.held():
        signal.raise_signal(signal.SIGINT)
        done.append("after the first")
        signal.raise_signal(signal.SIGINT)
        done.append("after the second")
    assert done == ["after the first"]


def test_outside_a_held_block_and_after_it_ctrl_c_raises_as_usual() -> None:
    interrupts = Interrupts()
    with interrupts.installed():
        with interrupts.held():
            pass
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with Interrupts().installed():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)  # nothing happens
    finally:
        signal.signal(signal.SIGINT, previous)
