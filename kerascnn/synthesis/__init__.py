"""Image synthesis shared by the apps: tiled exact gradients (tiles), colour handling (color), the
perceptual losses (perceptual), the style objective (stylization) and normalised gradient ascent on
an image (ascent: DeepDream's and activation maximisation's)."""
