"""Image synthesis shared by the apps: tiled exact gradients (tiles), colour handling (color), the
perceptual losses (perceptual) and the style objective (stylization)."""
