"""The clustering engine: 1-D k-means of a tensor's values into a small codebook."""

from .api import (INITS, METHODS, Clustering, Errors, check_options, cluster, error_curve,
                  kernels_preferred, substitute)

__all__ = ["Clustering", "Errors", "METHODS", "INITS", "check_options", "cluster", "error_curve",
           "substitute", "kernels_preferred"]
