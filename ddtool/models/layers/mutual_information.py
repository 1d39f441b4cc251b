"""The mutual information (MI) estimator: the Jensen-Shannon lower bound (Hjelm et al. 2019, Deep InfoMax).

DID's critic scores pairs of features; this bound turns the scores of joint
and shuffled pairs into an MI estimate that the model minimises.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def js_mutual_information(joint_scores: torch.Tensor, shuffled_scores: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon MI lower bound: E_joint[log sigmoid(T)] + E_marginal[log(1 - sigmoid(T))].

    `joint_scores` are critic outputs T on pairs taken from the same sample,
    `shuffled_scores` on pairs drawn from the product of the marginals. The
    value is <= 0; it equals -2 log 2 for a critic that cannot tell them
    apart and rises towards 0 as the pairs become distinguishable (dependent).
    log(1 - sigmoid(t)) = -softplus(t) keeps it finite for large |t|.
    """
    return -F.softplus(-joint_scores).mean() - F.softplus(shuffled_scores).mean()
