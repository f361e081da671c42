"""Disentanglement metrics computed exactly as google-research/disentanglement_lib does.

Array metrics are pure functions of numpy arrays: codes ``[N, D]`` floats and factor labels
``[N, K]`` integer class indices (disentanglement_lib stores both transposed); they return
plain Python floats. ``beta_vae_score`` and ``factor_vae_score`` need a sampler and an encoder.
"""

from sbvae.evaluation.metrics.beta_vae import beta_vae_score
from sbvae.evaluation.metrics.dci import (
    FactorFit,
    completeness_from_importance,
    dci,
    dci_from_fits,
    disentanglement_from_importance,
    estimate_fit_seconds,
    fit_factors,
    importance_matrix,
)
from sbvae.evaluation.metrics.factor_vae import factor_vae_score
from sbvae.evaluation.metrics.mig import mig, mig_from_mutual_info
from sbvae.evaluation.metrics.mig_chen import mig_chen
from sbvae.evaluation.metrics.modularity import (
    explicitness_per_factor,
    modularity_explicitness,
    modularity_from_mutual_info,
)
from sbvae.evaluation.metrics.sap import sap, sap_from_score_matrix, sap_score_matrix
from sbvae.evaluation.metrics.unsupervised import (
    gaussian_total_correlation,
    gaussian_wasserstein_correlation,
    unsupervised_scores,
)
from sbvae.evaluation.metrics.utils import (
    check_codes,
    check_codes_labels,
    check_labels,
    discrete_entropy,
    discrete_mutual_info,
    discretize,
)

__all__ = [
    "FactorFit",
    "beta_vae_score",
    "check_codes",
    "check_codes_labels",
    "check_labels",
    "completeness_from_importance",
    "dci",
    "dci_from_fits",
    "discrete_entropy",
    "discrete_mutual_info",
    "discretize",
    "disentanglement_from_importance",
    "estimate_fit_seconds",
    "explicitness_per_factor",
    "factor_vae_score",
    "fit_factors",
    "gaussian_total_correlation",
    "gaussian_wasserstein_correlation",
    "importance_matrix",
    "mig",
    "mig_chen",
    "mig_from_mutual_info",
    "modularity_explicitness",
    "modularity_from_mutual_info",
    "sap",
    "sap_from_score_matrix",
    "sap_score_matrix",
    "unsupervised_scores",
]
