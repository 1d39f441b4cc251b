"""ddtool.train: training detectors on a face cache.

- `config`:     TrainConfig, YAML loading, paper defaults, validation
- `augment`:    flip / rotation of RGB crops
- `loop`:       `train(config) -> RunResult` (run folder, resume, DDP, AMP)
- `checkpoint`: safetensors weights + JSON model cards
- `losses`:     objectives beyond cross-entropy (DID)
"""
