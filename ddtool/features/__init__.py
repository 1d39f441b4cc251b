"""Noise features: Gaussian residuals and handcrafted residual statistics.

The defaults live here (not in noise.py) so the CLI can show them without
importing numpy, OpenCV and pandas.
"""

RESIDUAL_SIZE = 100  # the paper's 100x100 distinguishment matrix
DEFAULT_SIGMA = 1.0
DEFAULT_FRAMES = 20  # the paper's 20 faces per video
