"""Detectors. Importing this package registers every model family."""

from ddtool.models.registry import ModelSpec, TrainDefaults, create_model, get_spec, list_models, register_model  # noqa: F401

# Model family modules (each registers its models on import), one line each.
import ddtool.models.resnet  # noqa: F401,E402
import ddtool.models.did  # noqa: F401,E402
import ddtool.models.vgg  # noqa: F401,E402
import ddtool.models.mobilenet  # noqa: F401,E402
import ddtool.models.ldfnet  # noqa: F401,E402
import ddtool.models.meso  # noqa: F401,E402
import ddtool.models.temporal  # noqa: F401,E402
import ddtool.models.lgbm  # noqa: F401,E402
import ddtool.models.efficientnet_lite  # noqa: F401,E402
import ddtool.models.clip_vit  # noqa: F401,E402
