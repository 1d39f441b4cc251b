"""Real deepfakes and self-blends in the same batches (issue 21's training recipe).

A detector trained only on one dataset's fakes learns that dataset's
artefacts; one trained only on self-blends (SBI) never sees a real
generator. `MixedDataset` puts both in one index space: first the face
cache's own crops (real and fake, e.g. FaceForensics++), then (real,
self-blend) pairs of real faces (`SynthesisDataset`, from the same cache or
another real-face cache). `MixedSampler` fills every batch in fixed shares:
`synth_fraction` of it whole (real, self-blend) pairs, the rest the cache's
crops with real and fake equally likely. The same draw on every rank and
after a resume (seeded by epoch).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Sampler

from ddtool.data.dataset import FaceCropDataset, balanced_weights
from ddtool.errors import ConfigError


class MixedDataset(ConcatDataset):
    """Items [0, n_labelled): the cache's labelled crops; then a SynthesisDataset's (real, forgery) pairs."""

    def __init__(self, labelled: FaceCropDataset, synthetic):
        if len(set(np.asarray(labelled.labels).tolist())) < 2:
            raise ConfigError("mixed training needs real and fake crops in the face cache; with real faces only use --synth alone")
        super().__init__([labelled, synthetic])
        self.labelled, self.synthetic = labelled, synthetic
        self.n_labelled = len(labelled)
        self.reals = synthetic.reals  # the self-blended faces (the training record reads them)

    def set_epoch(self, epoch: int) -> None:
        self.synthetic.set_epoch(epoch)  # fresh forgeries each epoch

    def describe(self) -> dict:
        labels = np.asarray(self.labelled.labels)
        return {**self.synthetic.describe(), "labelled_real": int((labels == 0).sum()), "labelled_fake": int((labels == 1).sum())}


class MixedSampler(Sampler[int]):
    """Flat indices whose every `batch_size` run holds `pairs` whole synthetic pairs and the rest labelled crops.

    An epoch covers the labelled crops about once (their share of each batch decides the step count).
    """

    def __init__(self, dataset: MixedDataset, batch_size: int, synth_fraction: float, seed: int, rank: int = 0, world_size: int = 1):
        if not 0.0 < synth_fraction < 1.0:
            raise ConfigError(f"synth_mix {synth_fraction} must be between 0 and 1 (the share of each batch that is self-blend pairs)")
        self.pairs = max(1, int(round(batch_size * synth_fraction / 2)))
        self.labelled = batch_size - 2 * self.pairs
        if self.labelled < 2:
            raise ConfigError(f"batch {batch_size} with synth_mix {synth_fraction} leaves fewer than 2 real-deepfake crops per batch; "
                              "lower synth_mix or raise the batch size")
        self.n_labelled, self.n_pairs = dataset.n_labelled, len(dataset.synthetic) // 2
        self.weights = torch.from_numpy(balanced_weights(np.asarray(dataset.labelled.labels)))
        self.batch_size, self.seed, self.rank, self.world_size, self.epoch = batch_size, int(seed), rank, world_size, 0
        self.batches = math.ceil(math.ceil(self.n_labelled / self.labelled) / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        total = self.batches * self.world_size
        labelled = torch.multinomial(self.weights, total * self.labelled, replacement=True, generator=generator).numpy()
        repeats = math.ceil(total * self.pairs / self.n_pairs)
        pairs = torch.cat([torch.randperm(self.n_pairs, generator=generator) for _ in range(repeats)]).numpy()
        out = []
        for b in range(self.rank, total, self.world_size):
            chosen = pairs[b * self.pairs : (b + 1) * self.pairs]
            synthetic = np.stack([2 * chosen, 2 * chosen + 1], axis=1).reshape(-1) + self.n_labelled
            out += labelled[b * self.labelled : (b + 1) * self.labelled].tolist() + synthetic.tolist()
        return iter(out)

    def __len__(self) -> int:
        return self.batches * self.batch_size
