"""The job records: their one status writer, their events, logs and permissions."""
