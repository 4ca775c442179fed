"""Class-agnostic box proposals per frame (motion priors, torchvision Mask R-CNN, mmdet) and their store."""
