"""ddtool.train: training detectors on a face cache.

- `config`:      TrainConfig, YAML loading, paper defaults, validation
- `augment`:     flip / rotation of RGB crops
- `loop`:        `train(config) -> RunResult`: the epoch loop (AMP, DDP)
- `run_folder`:  what a run leaves on disk (metrics, curves, resume state) and resuming
- `distributed`: torchrun ranks, the training device, seeding
- `progress`:    the per-epoch bar and line on stderr
- `features`:    features models (LightGBM): one fit with early stopping
- `checkpoint`, `losses`: old import paths of ddtool.models.checkpoint and the DID objective's parts
"""
