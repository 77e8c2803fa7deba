"""The bridge protocol shared by the Blender add-on and the backend (stdlib, numpy, pyzmq only)."""
