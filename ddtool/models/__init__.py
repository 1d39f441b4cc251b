"""Detectors. Importing this package registers every model family."""

from ddtool.models.registry import ModelSpec, TrainDefaults, create_model, get_spec, list_models, register_model  # noqa: F401

# Model family modules (each registers its models on import), one line each.
