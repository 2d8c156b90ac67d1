"""The REST API (FastAPI), versioned under /api/v1, and the web UI it serves."""
