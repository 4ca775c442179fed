"""Optical flow backends behind one interface, and the flow stage that caches their output."""
