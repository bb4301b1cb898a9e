"""JavaScript the client tests run."""

from __future__ import annotations

# Ticks every 50 ms, at least five times, until the file "go" appears in its worktree:
# the test decides when it ends, so what arrived before that arrived while it ran.
TICKS = """
const fs = require("fs");
let n = 0;
await new Promise((done) => {
  const timer = setInterval(() => {
    console.log("tick " + ++n);
    if (n >= 5 && fs.existsSync("go")) { clearInterval(timer); done(); }
  }, 50);
});
n
"""
