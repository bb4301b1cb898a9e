"""Attached to an execution: its output printed as it happens, Ctrl-C to cancel it.

``exec repl``, ``exec run-file``, ``run`` and ``exec follow`` all end here. The
transcript (:mod:`vmctl.cli.transcript`) is printed batch by batch as the
stream brings events; under ``--json`` each event is one line of JSON, and the
final record the last line.

The first Ctrl-C asks the daemon to cancel the execution, then prints the rest
of its output and how it ended; a second one leaves at once and lets the
execution be. Both exit 130, the shell's code for a command stopped by SIGINT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import click
import msgspec

from vmctl.api.models import Event, Execution
from vmctl.cli.context import CliContext
from vmctl.cli.interrupts import Interrupts
from vmctl.cli.transcript import Line, Transcript

EXIT_INTERRUPTED = 130  # 128 + SIGINT


def attach(cli: CliContext, start: Callable[[], Execution], after_seq: int = 0) -> Execution:
    """Start (or look up) an execution, print its events after ``after_seq`` until it ends,
    and return its final record; on Ctrl-C cancel it and exit 130."""
    interrupts = Interrupts()
    with interrupts.installed():
        try:
            execution = start()
        except KeyboardInterrupt:
            click.get_current_context().exit(EXIT_INTERRUPTED)  # no id yet: nothing to cancel
        printer = Printer(cli, execution.kind, after_seq, interrupts)
        try:
            return printer.follow(execution.id)
        except KeyboardInterrupt:
            pass
        try:
            cli.echo(f"cancelling execution {execution.id} (Ctrl-C again to detach)", err=True)
            cli.client.cancel_execution(execution.id)
            printer.follow(execution.id)  # the rest of its output, and how it ended
        except KeyboardInterrupt:
            cli.echo(
                f"detached from execution {execution.id}; `vmctl exec follow {execution.id}"
                f" --after-seq {printer.last_seq}` picks up its output",
                err=True,
            )
    click.get_current_context().exit(EXIT_INTERRUPTED)


class Printer:
    """Prints one execution's events, and remembers the last one printed."""

    def __init__(self, cli: CliContext, kind: str, after_seq: int, interrupts: Interrupts) -> None:
        self.cli = cli
        self.transcript = Transcript(kind)
        self.last_seq = after_seq
        self._interrupts = interrupts

    def follow(self, execution_id: str) -> Execution:
        """Print the events after the last one printed until the end; the final record."""
        with self.cli.client.stream_events(execution_id, self.last_seq) as stream:
            for batch in stream.batches():
                self.events(batch)
        assert stream.execution is not None, "a stream ends with the record or raises"
        self.end(stream.execution)
        return stream.execution

    def events(self, batch: Sequence[Event]) -> None:
        with self._interrupts.held():  # rendered, printed and counted, or none of it
            if self.cli.json:
                lines = [Line(msgspec.json.encode(event).decode()) for event in batch]
            else:
                lines = [line for event in batch for line in self.transcript.event(event)]
            self._write(lines)
            self.last_seq = batch[-1].seq

    def end(self, record: Execution) -> None:
        if self.cli.json:
            self._write([Line(msgspec.json.encode(record).decode())])
        else:
            self._write(self.transcript.end(record))

    def _write(self, lines: Sequence[Line]) -> None:
        """One write (and flush) per run of lines bound for the same stream, in order."""
        start = 0
        for index in range(1, len(lines) + 1):
            if index == len(lines) or lines[index].err != lines[start].err:
                text = "\n".join(line.text for line in lines[start:index])
                self.cli.echo(text, err=lines[start].err)
                start = index
