"""The REST API's wire types, shared by the daemon (vmctl.supervisor) and its clients.

Standard library and msgspec only: the client imports it, and the client never imports the
daemon.
"""
