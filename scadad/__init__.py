"""scadad: the SCADA daemon. Kept import-free so the API client can live under it."""

__version__ = "0.1.0"
