"""The `vmctl` command line and its HTTP client (talks to the daemon only over HTTP)."""
