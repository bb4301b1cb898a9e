"""``python -m vmctl.supervisor``: the daemon process (what ``vmctl up`` runs)."""

from vmctl.supervisor.server import main

main()
