"""The build-system cache: identity, lookup, reuse, join, /mnt/pipe snapshots and "why"."""
