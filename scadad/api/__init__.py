"""The local API: wire protocol, message types and client (importable without the daemon)."""
