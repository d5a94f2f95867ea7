"""rrs — robust, certifiable interpretation maps (Rényi-Robust-Smooth and friends).

Liu, Chen, Liu, Xia, Gan. *Certifiably Robust Interpretation via Rényi Differential
Privacy*. Artificial Intelligence, 2022. The specification followed here, with its
corrections, is the project's ``method.md``.
"""
from .noise import Gaussian, Laplace
from .scoring import topk_uniform, exponential, linear, power, from_values, make_scoring
from .attributions import (vanilla_gradient, input_x_gradient, integrated_gradients, grad_cam,
                           to_cells, ATTRIBUTIONS)
from .smoothing import smooth, raw_map, SmoothResult, METHODS
from .certify import (min_renyi_divergence, equal_level_divergence, certified_radius,
                      certified_radius_from_bounds, cell_radii, cell_radii_from_bounds,
                      certified_region, probability_bounds, gaussian_cdf_overlap,
                      gaussian_cdf_radius, gaussian_cdf_cell_radii, equal_level_radius,
                      Certificate,
                      CellCertificate, CellStats, CertificationReport, displaced_count)
from .certify import certify as certify_map  # `rrs.certify` stays the module
from .metrics import topk_intersection, spearman, kendall, topk_indices
from .models import Classifier, load_default, predict_topk

__version__ = "0.1.0"
