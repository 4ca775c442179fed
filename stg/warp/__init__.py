"""Mask warping: per-object priors Q carried along the cached optical flow."""
