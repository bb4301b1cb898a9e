"""The one error a scenario raises when the system under test misbehaves."""


class BenchmarkError(Exception):
    """A scenario could not measure: a start failed, or an answer was not the expected one."""
