"""Where a detector looks: Grad-CAM (ddtool.explain.gradcam) for single faces and
AFAM (ddtool.explain.afam) averaged over many fake faces, as the SFIConv and
LDFnet papers compare backbones."""
