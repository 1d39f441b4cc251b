"""`ddtool train --synth`: real crops paired with forgeries made on the fly (SBI-style)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ddtool.data.dataset import read_manifest
from ddtool.data.synth_dataset import LANDMARKS_FILE, SynthesisDataset, crop_landmarks, face_box_in_crop
from ddtool.errors import ConfigError
from ddtool.train.config import build_config
from ddtool.train.loop import train
from test_forge import cache, faces_dir, gan_weights  # noqa: F401  (module fixtures: a forged cache of 3 real faces)
from test_train import TINY


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
