"""Promise rejections that nothing handled, as the engine's event loop must report them.

QuickJS calls the host's rejection tracker when a promise with no handler rejects, and again
when a handler is added to it later. Node's rule is the model: a rejection still unhandled
once the microtasks of a turn have run is an uncaught error, and the execution fails with it.
:class:`UnhandledRejections` keeps each such promise and its reason (one reference each, taken
in the tracker) until the engine asks, or until a handler comes after all.

The tracker is a C callback: it only records, and it must not raise (ctypes would print and
swallow the error, and the promise would be forgotten).
"""

from __future__ import annotations

from vmctl.worker.capi import REJECTION_TRACKER, CApi, JSValue


class UnhandledRejections:
    """The promises rejected with no handler since the last :meth:`clear`, in order."""

    def __init__(self, api: CApi, rt: int, ctx: int) -> None:
        self._api = api
        self._rt = rt
        self._ctx = ctx
        self._pending: dict[int, tuple[JSValue, JSValue]] = {}  # promise address -> refs
        # ctypes frees the trampoline with this object: the engine keeps it for the context.
        self._on_track = REJECTION_TRACKER(self._track)
        api.SetHostPromiseRejectionTracker(rt, self._on_track, None)

    def _track(
        self, ctx: int | None, promise: JSValue, reason: JSValue, handled: bool, opaque: int | None
    ) -> None:
        if handled:
            refs = self._pending.pop(promise.u, None)
            if refs is not None:
                self._free(refs)
        elif promise.u not in self._pending:
            dup = self._api.DupValue
            self._pending[promise.u] = (dup(self._ctx, promise), dup(self._ctx, reason))

    def take_first(self, awaited: int | None = None) -> JSValue | None:
        """The reason of the earliest unhandled rejection (the caller frees it), forgetting
        them all; None when there is none. ``awaited`` is the address of the promise the
        engine itself waits for: its rejection is the execution's error, reported as such."""
        if awaited is not None and (refs := self._pending.pop(awaited, None)) is not None:
            self._free(refs)
        if not self._pending:
            return None
        pending = list(self._pending.values())
        self._pending.clear()
        (promise, reason), rest = pending[0], pending[1:]
        self._api.FreeValue(self._ctx, promise)
        for refs in rest:
            self._free(refs)
        return reason

    def clear(self) -> None:
        """Forget every rejection recorded so far."""
        while self._pending:
            self._free(self._pending.popitem()[1])

    def close(self) -> None:
        self.clear()
        self._api.SetHostPromiseRejectionTracker(self._rt, REJECTION_TRACKER(), None)

    def _free(self, refs: tuple[JSValue, JSValue]) -> None:
        for value in refs:
            self._api.FreeValue(self._ctx, value)
