"""Writing the face rig's curves to files."""
