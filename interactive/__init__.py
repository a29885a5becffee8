"""Interactive sessions: who may use and stop them, the reverse proxy to their servers, their API."""
