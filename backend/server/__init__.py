"""The backend server: ROUTER socket loop, job queue and worker, job store, request validation."""
from backend.server.server import BackendServer, ServerConfig

__all__ = ["BackendServer", "ServerConfig"]
