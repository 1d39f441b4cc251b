"""Detectors. The registry holds every model family once a name is first looked up.

The families are imported on the registry's first lookup (`get_spec`,
`list_models`, `create_model`), not when this package is imported: the
torch-free modules of ddtool.models (`cards`, `logits`, the onnxruntime
scorers `onnx_scorer` and `clip_probe_scorer`) are what `ddtool scan` runs,
and a scan that imports torch pays seconds of start-up for nothing.
"""

from ddtool.models.registry import ModelSpec, TrainDefaults, create_model, get_spec, list_models, register_model, set_family_loader  # noqa: F401


def _import_families() -> None:
    """Model family modules (each registers its models on import), one line each."""
    import ddtool.models.resnet  # noqa: F401
    import ddtool.models.did  # noqa: F401
    import ddtool.models.vgg  # noqa: F401
    import ddtool.models.mobilenet  # noqa: F401
    import ddtool.models.ldfnet  # noqa: F401
    import ddtool.models.meso  # noqa: F401
    import ddtool.models.temporal  # noqa: F401
    import ddtool.models.lgbm  # noqa: F401
    import ddtool.models.efficientnet_lite  # noqa: F401
    import ddtool.models.clip_vit  # noqa: F401


set_family_loader(_import_families)
