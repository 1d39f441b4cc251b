"""Building blocks shared by several model families; they import no family.

- `constrained`: constrained convolution (SFIConv eq. 1, LDFnet's GTR)
- `conv_factory`: vanilla Conv2d + BatchNorm for one builder per family; `PerBranch`, `add_branches`
- `head`: the pooled linear classifier head of ResNet, VGG and MobileNet
- `sge`: spatial group-wise enhance (LDFnet's BaseNet)
- `init`: weight initialisation
- `gradient_reversal`: the gradient reversal layer and its beta schedule (DID)
- `mutual_information`: the MI estimator, the Jensen-Shannon bound (DID)
"""
