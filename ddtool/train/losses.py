"""Training losses beyond plain cross-entropy, under their old import path.

Every one of them is part of a model's own objective (DID's
`training_losses`), so they live with the models and are re-exported here:

- `auc_loss`, `bce_auc_loss`: ddtool.models.losses (CrossDF eq. 2-3)
- `grad_reverse`, `GradientReversal`, `grl_beta`: ddtool.models.layers.gradient_reversal
- `js_mutual_information`: ddtool.models.layers.mutual_information (the MI estimator)
"""

from ddtool.models.layers.gradient_reversal import GradientReversal, grad_reverse, grl_beta  # noqa: F401
from ddtool.models.layers.mutual_information import js_mutual_information  # noqa: F401
from ddtool.models.losses import auc_loss, bce_auc_loss  # noqa: F401
