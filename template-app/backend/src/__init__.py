"""template-app's backend: the HTTP API (src.main) and the background tasks (src.worker)."""
