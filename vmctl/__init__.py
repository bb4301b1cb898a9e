"""vmctl: isolated, stateful JavaScript sessions behind a local HTTP API and a CLI."""
