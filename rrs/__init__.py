"""rrs — robust, certifiable interpretation maps (Rényi-Robust-Smooth and friends).

Liu, Chen, Liu, Xia, Gan. *Certifiably Robust Interpretation via Rényi Differential
Privacy*. Artificial Intelligence, 2022. The specification followed here, with its
corrections, is the project's ``method.md``.

Modules: ``noise`` (noise and its RDP curves), ``scoring`` (RRS scoring vectors), ``attributions``,
``methods`` (the method registry), ``settings`` (``MapSettings``, ``AttackSettings``,
``CertifySettings``), ``smoothing``, ``floor`` (the no-attack floor), ``certify`` (certificates:
``core``, ``important``, ``stable``, ``anytime``), ``metrics``, ``attacks``, ``models``, ``tiny``,
``images``, ``figures`` (PNG), ``timing`` (measured rates), ``compute`` (device, memory, batch and
time policy, scheduler, backends), ``study`` (the evaluation study, ``python -m rrs evaluate``),
``benchmarks`` (speed measurements), ``cli``, ``cliargs``, ``checks``, ``jsonio``. Note that ``rrs.certify`` is the module; its all-in-one function is
``rrs.certify.certify`` (re-exported here as ``certify_map``).
"""
from .noise import Gaussian, Laplace
from .scoring import topk_uniform, exponential, linear, power, from_values, make_scoring
from .attributions import (vanilla_gradient, input_x_gradient, integrated_gradients, grad_cam,
                           to_cells, ATTRIBUTIONS)
from .settings import MapSettings, AttackSettings, CertifySettings, Norm, L1, L2, LINF
from .methods import METHODS, RAW_METHODS, SMOOTH_METHODS, method_info
from .smoothing import smooth, smooth_stream, raw_map, interpretation_map, SmoothResult, CellStats
from .floor import no_attack_floor, NoAttackFloor
from .certify import (min_renyi_divergence, equal_level_divergence, certified_radius,
                      certified_radius_from_bounds, cell_radii, cell_radii_from_bounds,
                      certified_region, probability_bounds, gaussian_cdf_overlap,
                      gaussian_cdf_radius, gaussian_cdf_cell_radii, equal_level_radius,
                      Certificate, CellCertificate, CertificationReport, displaced_count)
from .certify import certify as certify_map
from .metrics import topk_intersection, tie_aware_intersection, spearman, kendall, topk_indices
from .models import (Classifier, ModelError, MODELS, load_default, load_model, load_tiny,
                     load_user_model, available_models, predict_topk)
from .images import ImageError, LoadedImage, load_image, load_sample, list_samples, to_tensor, to_pil
from .attacks import attack, AttackResult, surrogate_model

__version__ = "0.1.0"
