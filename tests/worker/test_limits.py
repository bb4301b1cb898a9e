"""The request slot: one running request at a time, and empty again however it ends."""

from __future__ import annotations

import pytest

from vmctl.worker.limits import Budget, RequestSlot, RunningRequest


def running(request_id: int) -> RunningRequest:
    return RunningRequest(request_id, Budget(), extensions=(".js",), modules=frozenset({"fs"}))


def test_the_slot_holds_a_request_for_its_block_only() -> None:
    slot, first = RequestSlot(), running(1)
    with slot.hold(first):
        assert slot.current is first
    assert slot.current is None
    with pytest.raises(ValueError), slot.hold(running(2)):
        raise ValueError("the request failed")
    assert slot.current is None


def test_a_second_request_cannot_start_while_one_runs() -> None:
    slot = RequestSlot()
    with slot.hold(running(1)):
        refused = pytest.raises(RuntimeError, match="request 2 cannot start while request 1 runs")
        with refused, slot.hold(running(2)):
            pass
        assert slot.current is not None and slot.current.id == 1
    assert slot.current is None
