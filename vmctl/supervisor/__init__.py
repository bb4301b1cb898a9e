"""Worker handles: spawn, handshake, limits, death, close (no HTTP)."""
