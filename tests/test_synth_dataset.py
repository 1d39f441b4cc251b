"""`ddtool train --synth`: real crops paired with forgeries made on the fly (SBI-style)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ddtool.data.dataset import PairSampler, read_manifest
from ddtool.data.synth_dataset import LANDMARKS_FILE, SynthesisDataset, crop_landmarks, face_box_in_crop
from ddtool.errors import ConfigError
from ddtool.train.config import build_config
from ddtool.train.loop import make_train_loader, train
from test_forge import cache, faces_dir, gan_weights  # noqa: F401  (module fixtures: a forged cache of 3 real faces)
from test_train import TINY, tiny_model  # noqa: F401  (autouse fixture: registers TINY)


def _reals(cache_dir) -> pd.DataFrame:
    rows = read_manifest(cache_dir)
    return rows[rows["label"] == 0].reset_index(drop=True)


def _dataset(cache_dir, methods=("self_blend", "face_swap"), seed=1, **kwargs) -> SynthesisDataset:
    return SynthesisDataset(cache_dir, _reals(cache_dir), 64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), methods, seed, **kwargs)


def test_face_box_sits_where_the_margin_put_it():
    assert face_box_in_crop(256, 0.0) == (0, 0, 256, 256)
    assert face_box_in_crop(256, 0.5) == (64, 64, 192, 192)  # box side 128, 0.5 * 128 on each side


def test_pairs_alternate_real_and_fresh_forgery(cache):
    data = _dataset(cache)
    n = len(data.reals)
    assert n == 3 and len(data) == 2 * n
    assert list(data.labels) == [0, 1] * n
    real, label_real, domain_real, _ = data[0]
    fake, label_fake, domain_fake, _ = data[1]
    assert (label_real, domain_real) == (0, 0) and label_fake == 1 and domain_fake in (1, 2)
    assert real.shape == fake.shape == (3, 64, 64)
    assert float((real - fake).abs().mean()) > 0.005  # the forgery changed the face


def test_forgeries_are_seeded_per_epoch_and_item(cache):
    data = _dataset(cache)
    first, _ = data.forge(0)
    again, _ = _dataset(cache).forge(0)
    assert np.array_equal(first, again)  # same (seed, epoch, k): same pixels, whatever the order of work
    data.set_epoch(1)
    assert not np.array_equal(data.forge(0)[0], first)  # a new epoch draws a new forgery
    pinned = _dataset(cache, fixed_epoch=0)
    pinned.set_epoch(5)
    assert np.array_equal(pinned.forge(0)[0], first)  # validation keeps the same fakes


def test_face_swap_takes_another_groups_donor(cache):
    data = _dataset(cache, methods=("face_swap",))
    for k in range(len(data.reals)):
        forged, method = data.forge(k)
        assert method == "face_swap" and forged.shape[:2] == (256, 256)
    assert len(set(data.donor_key)) == 3


def test_landmarks_are_stored_once_and_reused(cache, monkeypatch):
    reals = _reals(cache)["crop_path"].tolist()
    marks = crop_landmarks(cache, reals)
    assert all(m is not None and m.shape == (68, 2) for m in marks.values())
    stored = pd.read_csv(cache / LANDMARKS_FILE)
    assert set(stored["crop_path"]) >= set(reals)

    def boom(*args, **kwargs):
        raise AssertionError("landmarks recomputed")

    monkeypatch.setattr("ddtool.media.landmarks.landmarks_68", boom)
    again = crop_landmarks(cache, reals)
    assert all(np.allclose(again[p], marks[p], atol=0.01) for p in reals)


def test_bad_methods_and_did_are_config_errors(cache, tmp_path):
    with pytest.raises(ConfigError, match="--synth"):
        _dataset(cache, methods=("gan_face",))
    with pytest.raises(ConfigError, match="--synth"):
        build_config(model=TINY, data=str(cache), out=str(tmp_path / "r"), synth=["blur"])
    with pytest.raises(ConfigError, match="DID"):
        build_config(model=TINY, data=str(cache), out=str(tmp_path / "r"), synth=["self_blend"], did=True)


def test_train_with_synth_records_what_the_model_saw(cache, tmp_path):
    config = build_config(model=TINY, data=str(cache), out=str(tmp_path / "run"), device="cpu", epochs=2,
                          synth=["self_blend", "face_swap"], val_fraction=0.34)
    result = train(config)
    card = json.loads((result.run_dir / "best.json").read_text())
    synth = card["training_data"]["synth"]
    assert synth["methods"] == ["self_blend", "face_swap"] and synth["real_crops"] >= 1
    assert card["training_data"]["train"]["fake_made_on_the_fly"] is True
    assert card["config"]["synth"] == ["self_blend", "face_swap"]
    assert card["input"]["margin"] == 0.5  # the forged cache's crops were cut with margin 0.5
    from ddtool.weights import train_command

    assert "--synth self_blend,face_swap" in train_command(card["config"])


def test_repeats_show_each_real_again_with_another_forgery(cache):
    data = _dataset(cache, repeats=2)
    n = len(data.reals)
    assert len(data) == 4 * n and data.describe()["repeats"] == 2 and data.describe()["forgeries_per_epoch"] == 2 * n
    assert data.paths[0] == data.paths[2 * n]  # pair n shows real 0 again
    assert not np.array_equal(data.forge(0)[0], data.forge(n)[0])
    with pytest.raises(ConfigError, match="synth_repeats"):
        _dataset(cache, repeats=0)


class _EpochEcho(torch.utils.data.Dataset):
    """Returns the epoch it was told, like SynthesisDataset's per-epoch forgeries."""

    def __init__(self):
        self.epoch = 0
        self.labels = np.zeros(4, dtype=np.int64)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return self.epoch


def test_worker_processes_see_every_epoch():
    # Persistent workers would keep epoch 1's copy of the dataset and repeat its forgeries.
    dataset = _EpochEcho()
    loader = make_train_loader(dataset, list(range(4)), batch_size=2, workers=1, pin_memory=False)
    seen = []
    for epoch in (1, 2, 3):
        dataset.set_epoch(epoch)
        seen.append(sorted({int(v) for batch in loader for v in batch}))
    assert seen == [[1], [2], [3]]


def test_real_and_its_forgery_get_the_same_augmentation(cache):
    draws = []

    def record(image):
        draws.append(float(torch.rand(())))
        return image

    data = _dataset(cache, augment=record, repeats=2)
    for index in range(len(data)):
        data[index]
    pairs = [draws[i : i + 2] for i in range(0, len(draws), 2)]
    assert all(real == fake for real, fake in pairs)  # one draw per pair, shared by its two halves
    assert len({real for real, _ in pairs}) == len(pairs)  # another draw for every pair
    data.set_epoch(1)
    draws.clear()
    data[0]
    assert draws[0] != pairs[0][0]  # and another each epoch


def test_pair_sampler_keeps_pairs_together_and_reshuffles():
    sampler = PairSampler(20, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(20))
    assert all(first[i] % 2 == 0 and first[i + 1] == first[i] + 1 for i in range(0, 20, 2))
    assert list(PairSampler(20, seed=3)) == first  # seeded: resume draws the same order
    sampler.set_epoch(1)
    assert list(sampler) != first
    ranks = [list(PairSampler(22, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 12  # 11 pairs padded to 12, 6 per rank
    assert set(ranks[0]) | set(ranks[1]) == set(range(22))
    with pytest.raises(ConfigError):
        PairSampler(5, seed=0)


def test_synth_training_batches_hold_whole_pairs(cache, tmp_path, monkeypatch):
    seen = []
    real_getitem = SynthesisDataset.__getitem__

    def spy(self, index):
        seen.append(index)
        return real_getitem(self, index)

    monkeypatch.setattr(SynthesisDataset, "__getitem__", spy)
    config = build_config(model=TINY, data=str(cache), out=str(tmp_path / "run"), device="cpu", epochs=1, batch_size=2,
                          synth=["self_blend"], synth_repeats=2, val_fraction=0.34)
    train(config)
    epoch = seen[1:]  # seen[0] is the input-shape check
    assert len(epoch) >= 4 and len(epoch) % 2 == 0
    batches = [epoch[i : i + 2] for i in range(0, len(epoch), 2)]
    assert all(b[0] % 2 == 0 and b[1] == b[0] + 1 for b in batches)  # every batch: one real and its forgery


def test_synth_needs_an_image_model(cache, tmp_path):
    config = build_config(model="lgbm_noise", data=str(cache), out=str(tmp_path / "run"), synth=["self_blend"])
    with pytest.raises(ConfigError, match="image model"):
        train(config)
    assert not (tmp_path / "run").exists()  # refused before anything was written
