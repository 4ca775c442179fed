"""STG-Net as a staged, cached video object segmentation pipeline."""

__version__ = "0.1.0"
