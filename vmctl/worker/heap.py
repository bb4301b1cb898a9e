"""Whether a thrown value means the heap ran out, when QuickJS does not say so itself.

An out-of-memory error once thrown is InternalError("out of memory"), a bare InternalError
when its message could not be allocated, null when not even the error object could be
(JS_ThrowError2), or no exception at all when an allocation failed while the engine was
already throwing one. A null is also what ``throw null`` throws: the attached engine tells
the two apart with a :class:`HeapWatch` over the runtime's malloc counters (see
:mod:`vmctl.worker.capi`); the degraded engine cannot (:func:`binding_error_is_out_of_memory`).
"""

from __future__ import annotations

from collections.abc import Callable

from vmctl.worker.capi import TAG_NULL, TAG_UNINITIALIZED, Attachment

_OOM_TEXTS = frozenset({"InternalError: out of memory", "InternalError"})


def _near_limit_margin(limit: int) -> int:
    """How close to the limit a heap must come for a thrown null to be out of memory."""
    return max(limit // 16, 256 * 1024)


class HeapWatch:
    """Whether the heap came near the memory limit during one evaluation.

    QuickJS throws null when an allocation fails and not even the error object fits (about
    half the runaway loops measured at the limit end so), and ``throw null`` throws the same
    value. A thrown null counts as out of memory when, during the evaluation, the heap came
    within :func:`_near_limit_margin` of the limit (a heap that starts full fails on its
    first allocation, with no growth to see), or grew by at least a quarter of the room it
    had at the start (a string doubled past the limit fails at about half of it, when the
    old copy and the new one no longer fit together). Unwinding may have freed
    the loop's locals by the time the exception leaves ``JS_Eval``, so the peak is judged
    from lower bounds: the size at the end; the size at every interrupt-handler call (a
    pointer read); and the live size at the last garbage collection, which QuickJS runs as
    objects are allocated (inside native calls such as ``JSON.parse`` too, which never reach
    the interrupt handler) and after which it sets the threshold to 1.5 times that size.

    An evaluation that starts near the limit first collects garbage, so a heap held only by
    garbage (``hog = null`` after a memory-limit failure) does not make a later ``throw
    null`` look like out of memory. A heap held near the limit by live data makes every
    null look like one, and then it almost always is: the next allocation fails.
    """

    def __init__(self, attachment: Attachment, collect: Callable[[], None]) -> None:
        self._rt = attachment.rt
        self._api = attachment.api
        self._size = attachment.malloc_size
        self._limit = attachment.malloc_limit
        self._collect = collect
        self._start = 0
        self._peak = 0
        self._threshold_before = 0

    def begin(self) -> None:
        """Start watching an evaluation.

        A collection threshold beyond half the room left (one an earlier request set high)
        is lowered to that, so that a heap filling up is collected, and measured, on the
        way: QuickJS never collects when an allocation fails.
        """
        limit = self._limit.value
        if limit and self._size.value >= limit - _near_limit_margin(limit):
            self._collect()
        start = self._start = self._peak = self._size.value
        if limit > start:
            midway = start + (limit - start) // 2
            if self._api.GetGCThreshold(self._rt) > midway:
                self._api.SetGCThreshold(self._rt, midway)
        self._threshold_before = self._api.GetGCThreshold(self._rt)

    def sample(self) -> None:
        """Called from the interrupt handler: keep it one read and one compare."""
        size = self._size.value
        if size > self._peak:
            self._peak = size

    def is_out_of_memory(self, tag: int, error_text: Callable[[], str | None]) -> bool:
        """Whether the value thrown by this evaluation (its tag, and ``error_text()``:
        ``String(value)`` for an Error, else None) means an allocation failed."""
        if tag == TAG_UNINITIALIZED:
            return True  # nothing pending: the error for a failed allocation did not fit
        if tag == TAG_NULL:
            return self._came_near_limit()
        return error_text() in _OOM_TEXTS

    def _came_near_limit(self) -> bool:
        limit = self._limit.value
        if limit == 0:
            return False  # no limit set: QuickJS itself never runs out
        peak = max(self._peak, self._size.value)
        threshold = self._api.GetGCThreshold(self._rt)
        if threshold != self._threshold_before:  # a collection ran during the evaluation
            peak = max(peak, threshold * 2 // 3)
        grew_into_room = peak - self._start >= (limit - self._start) // 4
        return peak >= limit - _near_limit_margin(limit) or grew_into_room


def binding_error_is_out_of_memory(message: str) -> bool:
    """Whether the first line of a ``_quickjs.JSException`` means an allocation failed.

    Without the runtime's counters a thrown null cannot be told from the null QuickJS throws
    when not even its out-of-memory error fits: it counts as out of memory here, so a
    degraded worker reports ``throw null`` as MEMORY_LIMIT.
    """
    return message.startswith("InternalError: out of memory") or message == "null"
