"""A stand-in Kubernetes API server for mlboot's tests (see ../README.md)."""
