"""`ddtool train --synth self_blend --synth-mix F`: a cache's real deepfakes and self-blends in the same batches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ddtool.data.dataset import FaceCropDataset, read_manifest
from ddtool.data.mixed_dataset import MixedDataset, MixedSampler
from ddtool.data.synth_dataset import SynthesisDataset
from ddtool.errors import ConfigError
from ddtool.train.config import build_config
from ddtool.train.loop import train
from test_forge import cache, faces_dir, gan_weights  # noqa: F401  (module fixtures: a forged cache of 3 real faces)
from test_train import TINY, tiny_model  # noqa: F401  (autouse fixture: registers TINY)

MEAN = STD = (0.5, 0.5, 0.5)


def _mixed(cache_dir) -> MixedDataset:
    rows = read_manifest(cache_dir)
    labelled = FaceCropDataset(cache_dir, rows, 64, MEAN, STD)
    synthetic = SynthesisDataset(cache_dir, rows[rows["label"] == 0].reset_index(drop=True), 64, MEAN, STD, ["self_blend"], seed=3)
    return MixedDataset(labelled, synthetic)


def test_every_batch_holds_its_share_of_whole_pairs_and_of_both_classes(cache):
    data = _mixed(cache)
    sampler = MixedSampler(data, batch_size=8, synth_fraction=0.5, seed=1)
    order = list(sampler)
    assert len(order) == len(sampler) and len(order) % 8 == 0
    labelled_labels = np.asarray(data.labelled.labels)
    seen_real = seen_fake = 0
    for b in range(0, len(order), 8):
        batch = order[b : b + 8]
        own, synthetic = [i for i in batch if i < data.n_labelled], [i - data.n_labelled for i in batch if i >= data.n_labelled]
        assert len(own) == 4 and len(synthetic) == 4
        # whole pairs: real 2k then its forgery 2k+1, side by side
        assert all(synthetic[j] % 2 == 0 and synthetic[j + 1] == synthetic[j] + 1 for j in range(0, 4, 2))
        seen_real += int((labelled_labels[own] == 0).sum())
        seen_fake += int((labelled_labels[own] == 1).sum())
    assert seen_real > 0 and seen_fake > 0
    # what the indices give: the cache's own label, then real (0) and forgery (1) for each pair
    _, label, _, _ = data[order[4]]
    _, forged_label, _, _ = data[order[5]]
    assert (label, forged_label) == (0, 1)


def test_the_draw_is_seeded_per_epoch_and_split_across_ranks(cache):
    data = _mixed(cache)
    a, b = MixedSampler(data, 8, 0.5, seed=1), MixedSampler(data, 8, 0.5, seed=1)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    ranks = [list(MixedSampler(data, 8, 0.5, seed=1, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) and ranks[0] != ranks[1]


def test_bad_shares_and_a_real_only_cache_are_config_errors(cache, tmp_path):
    data = _mixed(cache)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        MixedSampler(data, 8, 1.0, seed=1)
    with pytest.raises(ConfigError, match="fewer than 2 real-deepfake crops"):
        MixedSampler(data, 4, 0.9, seed=1)
    rows = read_manifest(cache)
    reals = rows[rows["label"] == 0].reset_index(drop=True)
    with pytest.raises(ConfigError, match="real and fake crops"):
        MixedDataset(FaceCropDataset(cache, reals, 64, MEAN, STD), SynthesisDataset(cache, reals, 64, MEAN, STD, ["self_blend"], seed=3))
    with pytest.raises(ConfigError, match="need --synth"):
        build_config(model=TINY, data=str(cache), synth_mix=0.5)
    with pytest.raises(ConfigError, match="is not a face cache"):
        build_config(model=TINY, data=str(cache), synth=["self_blend"], synth_mix=0.5, synth_data=str(tmp_path))


def test_train_with_synth_mix_records_both_sources_and_the_command(cache, tmp_path):
    config = build_config(model=TINY, data=str(cache), out=str(tmp_path / "run"), device="cpu", epochs=1, batch_size=8,
                          synth=["self_blend"], synth_mix=0.5, synth_data=str(cache), val_fraction=0.34)
    result = train(config)
    card = json.loads((result.run_dir / "best.json").read_text())
    synth = card["training_data"]["synth"]
    assert synth["synth_mix"] == 0.5 and synth["labelled_real"] >= 1 and synth["labelled_fake"] >= 1
    assert synth["methods"] == ["self_blend"]
    from ddtool.weights import train_command

    assert "--synth self_blend --synth-mix 0.5 --synth-data" in train_command(card["config"])
