"""What an engine is to the session: the :class:`JsEngine` protocol and the errors it raises.

Two engines provide it. :class:`~vmctl.worker.engine.Engine` is QuickJS attached through
the wheel's C API (soft interrupts, ES modules, scripts named in stack traces);
:class:`~vmctl.worker.plain.PlainEngine` is the binding alone, for when the attach is
refused. The session opens one at start and uses nothing but what is declared here. What
request is running (its budget, its resolver extensions) the attached engine reads from the
session's :class:`~vmctl.worker.limits.RequestSlot`, given to it when it is opened.

The errors::

    EngineError         a script did not complete normally
     ├── JsThrown       it threw (the payload is the inspector's JSON text)
     ├── Interrupted    the budget stopped it
     ├── OutOfMemory    an allocation went past the memory limit
     ├── NeverSettled   a promise it waits for can no longer settle
     └── Unsupported    a degraded engine cannot do this
    AttachRefused       the C API attach failed: the worker runs degraded
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal, Protocol

from vmctl.worker.limits import Budget

# What a script's completion value is: the value itself; a promise of ``{value}`` (an async
# REPL snippet, see repl.py); or a value to adopt, passed through the inspector's settle
# function into such a promise (a REPL snippet whose value may be a thenable).
Completion = Literal["value", "promise", "adopt"]


class JsEngine(Protocol):
    """One QuickJS context for the life of the worker.

    Every call comes from the thread that opened the engine (only the running request's
    ``budget.cancel()`` may come from another). The evaluation methods raise
    :class:`EngineError` subclasses.
    """

    @property
    def soft_interrupt(self) -> bool:
        """Whether the budget stops a running script (if not, only the supervisor's kill)."""

    @property
    def degraded_reason(self) -> str | None:
        """Why this engine runs without the attach, for the handshake; None when attached."""

    def add_callable(self, name: str, fn: Callable[..., object]) -> None:
        """Expose a Python function as a global; it must never raise (return errors as data)."""

    def set_memory_limit(self, limit_bytes: int) -> None:
        """Cap the runtime's heap; an allocation past it fails as :class:`OutOfMemory`."""

    def set_stack_limit(self, limit_bytes: int) -> None:
        """Cap the JavaScript stack."""

    def collect_garbage(self) -> None:
        """Run a full collection (after an out-of-memory failure, to make room)."""

    def restart_clock(self) -> None:
        """Make now the time origin of ``performance.now()`` (a session's start)."""

    def bootstrap(self, source: str, filename: str) -> None:
        """Evaluate trusted setup code (the prelude) and drop its value."""

    def use_inspector(self, describe: str, exception: str, settle: str | None = None) -> None:
        """Name the global functions that turn a value and a thrown value into JSON text,
        and (optionally) the one that turns a completion into a promise of ``{value}``."""

    def compile(self, source: str, filename: str) -> None:
        """Keep the bytecode of trusted ``source`` for later contexts, running nothing."""

    def use_lazy_scripts(self, receive: str, scripts: Mapping[str, tuple[str, str]]) -> None:
        """Trusted scripts evaluated when JavaScript asks (``__vmctl_host_load(name)``, which
        is :meth:`load_script`): ``scripts`` maps a name to its filename and source, and
        ``receive`` is an expression for the function that is handed each one's value."""

    def load_script(self, name: object) -> str:
        """Evaluate lazy script ``name`` and hand its value to the receive function; ``""``,
        or why it could not. Never raises (it is a host callable)."""

    def use_event_loop(self, step: str, clear: str) -> None:
        """Name the prelude's timer functions: ``step()`` runs the earliest due timer (0), or
        answers the milliseconds until one is due, or -1 when none is pending; ``clear()``
        drops every pending timer."""

    def eval_script(
        self, source: str, filename: str, *, strict: bool = False, completion: Completion = "value"
    ) -> str:
        """Evaluate a global script and run the event loop (jobs and timers) to its end; its
        value (see :data:`Completion`), described by the inspector."""

    def eval_module(self, name: str) -> str:
        """Load, link and evaluate module ``name`` to its end; its (undefined) value, described."""

    def set_global_json(self, name: str, text: str) -> None:
        """``globalThis[name] = JSON.parse(text)``."""

    def abandon(self) -> None:
        """After a failed request, with none running: drop its pending timers (and what else
        it left that would run later)."""

    def close(self) -> None:
        """Release what the engine holds; nothing calls back into Python afterwards."""


class EngineError(Exception):
    """A script did not complete normally; the subclass says how."""


class JsThrown(EngineError):
    """The script threw; ``payload`` is the exception inspector's JSON text."""

    def __init__(self, payload: str) -> None:
        super().__init__(payload)
        self.payload = payload


class Interrupted(EngineError):
    """The interrupt handler stopped the script; ``budget.tripped`` says why."""

    def __init__(self, budget: Budget) -> None:
        super().__init__(budget.tripped)
        self.budget = budget


class OutOfMemory(EngineError):
    """An allocation went past the memory limit."""


class NeverSettled(EngineError):
    """A promise the request waits for is still pending and no job is left to settle it."""


class Unsupported(EngineError):
    """The engine runs degraded and cannot do this."""


class AttachRefused(Exception):
    """A layout check failed; the message is the degraded reason the handshake reports."""
