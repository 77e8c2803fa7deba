"""Sidebar panels (Sequencer and 3D View)."""
