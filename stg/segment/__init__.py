"""Proposal segmentation: one soft mask per detection box, seeded by the warped prior Q (paper section 3.1)."""
