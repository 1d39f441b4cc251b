"""`ddtool train`: the training loop end to end on a tiny generated face cache."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from ddtool.cli.app import app
from ddtool.errors import ConfigError, InputError
from ddtool.models.registry import ModelSpec, TrainDefaults, register_model
from ddtool.models.checkpoint import load_checkpoint
from ddtool.train.config import TrainConfig, build_config
from ddtool.train.loop import STATE_FILE, load_state, train
from test_dataset import make_cache

TINY = "_tiny_train_test"


class TinyNet(nn.Module):
    """A few thousand parameters with the backbone contract (forward_features, num_features) and dropout."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.num_features = width * 2
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(self.num_features, 2)

    def forward_features(self, x):
        return self.features(x)

    def forward(self, x):
        return self.head(self.drop(self.forward_features(x).mean(dim=(2, 3))))


@pytest.fixture(autouse=True)
def tiny_model() -> str:
    """TINY, registered for one test (tests/conftest.py restores the registry after it)."""
    register_model(ModelSpec(
        name=TINY, builder=TinyNet, description="test-only tiny CNN", family="test", input_size=32,
        train=TrainDefaults(lr=1e-3, epochs=2, batch_size=8, seed=7),
    ))
    return TINY


@pytest.fixture()
def cache(tmp_path) -> Path:
    return make_cache(tmp_path / "cache")


def _config(cache: Path, out: Path, model: str = TINY, **overrides) -> TrainConfig:
    return build_config(model=model, data=str(cache), out=str(out), device="cpu", **overrides)


def test_run_folder_holds_checkpoints_metrics_curves_and_state(cache, tmp_path):
    result = train(_config(cache, tmp_path / "run"))
    run = result.run_dir
    for name in ("config.yaml", "best.safetensors", "best.json", "last.safetensors", "last.json", "metrics.csv", "curves.png", STATE_FILE):
        assert (run / name).is_file(), name
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*"))
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert set(rows[0]) == {"epoch", "train_loss", "val_loss", "val_auc", "val_acc", "lr", "images_per_s", "seconds"}
    assert float(rows[1]["lr"]) == pytest.approx(0.5 * float(rows[0]["lr"]))  # paper: lr x0.5 per epoch
    card = json.loads((run / "best.json").read_text())
    assert card["model"] == TINY and card["config"]["epochs"] == 2 and card["config"]["batch_size"] == 8
    data = card["training_data"]
    assert len(data["manifest_sha256"]) == 64 and data["train"]["videos"] + data["val"]["videos"] == 8
    assert card["metrics"]["epoch"] == result.best_epoch
    assert card["metrics"]["val_auc"] == pytest.approx(max(float(r["val_auc"]) for r in rows))
    model, _ = load_checkpoint(run / "best.json")
    assert isinstance(model, TinyNet)
    state = load_state(run)  # weights_only=True inside
    assert state["epoch"] == 2 and set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["lr"] == 1e-3 and saved["model"] == TINY


def test_resume_reproduces_an_uninterrupted_run_exactly(cache, tmp_path):
    full = train(_config(cache, tmp_path / "full"))

    class Crash(Exception):
        pass

    def crash_after_first(epoch, row):
        if epoch == 1:
            raise Crash

    with pytest.raises(Crash):
        train(_config(cache, tmp_path / "crashed"), on_epoch_end=crash_after_first)
    assert load_state(tmp_path / "crashed")["epoch"] == 1
    resumed = train(build_config(out=str(tmp_path / "crashed"), resume=True, device="cpu"))
    assert resumed.history[-1]["epoch"] == 2 and len(resumed.history) == 2
    a = load_file(str(full.run_dir / "last.safetensors"))
    b = load_file(str(resumed.run_dir / "last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.history[1]["train_loss"] == full.history[1]["train_loss"]
    rows = list(csv.DictReader(open(resumed.run_dir / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]


def test_resume_refuses_finished_or_foreign_runs(cache, tmp_path):
    train(_config(cache, tmp_path / "run", epochs=1))
    with pytest.raises(ConfigError, match="already finished 1 epoch"):
        train(build_config(out=str(tmp_path / "run"), resume=True, device="cpu"))
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(_config(cache, tmp_path / "run", epochs=1))
    with pytest.raises(ConfigError, match="no train_state.pt"):
        train(build_config(out=str(tmp_path / "empty"), resume=True))
    # extending a finished run with more epochs continues it
    longer = train(build_config(out=str(tmp_path / "run"), resume=True, epochs=2, device="cpu"))
    assert [r["epoch"] for r in longer.history] == [1, 2]


def test_config_file_is_overridden_by_command_line(cache, tmp_path):
    config_file = tmp_path / "train.yaml"
    config_file.write_text(yaml.safe_dump({"model": TINY, "data": str(cache), "epochs": 2, "batch": 4, "lr": 0.01, "max_steps": 2, "device": "cpu"}))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--config", str(config_file), "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["epochs"] == 1  # command line wins
    assert saved["batch_size"] == 4 and saved["lr"] == 0.01  # file wins over paper defaults
    assert saved["seed"] == 7  # paper default where neither says
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 1


def test_augment_option_reaches_the_run_and_its_repeat_command(cache, tmp_path):
    from ddtool.weights import train_command

    out = tmp_path / "run"
    args = ["train", "--model", TINY, "--data", str(cache), "--epochs", "1", "--max-steps", "2", "--device", "cpu",
            "--out", str(out), "--augment", "hflip,zoom,jpeg,downscale"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["augment"] == ["hflip", "zoom", "jpeg", "downscale"]
    assert "--augment hflip,zoom,jpeg,downscale" in train_command(saved)
    bad = CliRunner().invoke(app, [*args[:-1], "hflip,no_such_augmentation"])
    assert isinstance(bad.exception, ConfigError) and "unknown augmentation" in str(bad.exception)  # exit 3 via ddtool's main


def test_unknown_config_key_lists_valid_ones(cache, tmp_path):
    config_file = tmp_path / "bad.yaml"
    config_file.write_text("model: x\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) learning_rate; valid keys: model, data"):
        build_config(config_file)
    with pytest.raises(ConfigError, match="lr_decay must be in"):
        build_config(model=TINY, data=str(cache), lr_decay=2.0)


def test_bad_crop_gives_clear_error_and_exit_code_3(cache, tmp_path):
    import pandas as pd

    manifest = pd.read_csv(cache / "manifest.csv")
    manifest.loc[0, "crop_path"] = "crops/vanished.png"
    manifest.to_csv(cache / "manifest.csv", index=False)
    with pytest.raises(InputError, match="vanished.png is missing"):
        train(_config(cache, tmp_path / "run", epochs=1, balance="none"))
    from ddtool.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", TINY, "--data", str(cache), "--out", str(tmp_path / "run2"), "--epochs", "1", "--device", "cpu"])
    assert exit_info.value.code == 3


def test_unknown_model_and_missing_cache_are_config_errors(cache, tmp_path):
    with pytest.raises(ConfigError, match="unknown model"):
        train(build_config(model="no_such_net", data=str(cache), out=str(tmp_path / "r")))
    with pytest.raises(InputError, match="not found"):
        train(build_config(model=TINY, data=str(tmp_path / "nope"), out=str(tmp_path / "r")))


def test_holdout_method_is_recorded(tmp_path):
    cache = make_cache(tmp_path / "c", fake_methods=("Deepfakes", "Face2Face", "FaceSwap"))
    result = train(_config(cache, tmp_path / "run", epochs=1, holdout_method="Face2Face"))
    card = json.loads(result.best_checkpoint.read_text())
    assert card["training_data"]["holdout_method"] == "Face2Face"
    assert card["training_data"]["domains"] == {"Deepfakes": 1, "FaceSwap": 2}


def test_did_objective_trains_one_epoch_with_tiny_backbone(cache, tmp_path):
    config = _config(cache, tmp_path / "run", epochs=1, did=True, batch_size=8,
                     model_kwargs={"head_hidden": 16, "critic_width": 8, "attention_reduction": 4})
    result = train(config)
    card = json.loads(result.best_checkpoint.read_text())
    assert card["model"] == "did"
    assert card["model_kwargs"]["backbone"] == TINY and card["model_kwargs"]["num_domains"] == 2
    model, _ = load_checkpoint(result.best_checkpoint)
    assert model.num_domains == 2
    assert result.history[0]["train_loss"] == result.history[0]["train_loss"]  # not NaN


@pytest.mark.parametrize("name,size", [("ldfnet", 32), ("sfic_resnet26", 32), ("mesoinception4", 64)])
def test_paper_image_models_train(tmp_path, name, size):
    # The smallest cache a video-level split accepts: these models are slow on CPU.
    cache = make_cache(tmp_path / "cache", real_videos=2, fake_videos_per_method=1, crops_per_video=2)
    result = train(_config(cache, tmp_path / name, model=name, epochs=1, size=size, batch_size=4, max_steps=1))
    card = json.loads(result.best_checkpoint.read_text())
    assert card["model"] == name and card["input"]["size"] == size
    model, _ = load_checkpoint(result.best_checkpoint)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, size, size)).shape == (1, 2)


def _with_noise_features(tmp_path) -> Path:
    from ddtool.features.noise import compute_noise_features

    cache = make_cache(tmp_path / "noise_cache", real_videos=4, fake_videos_per_method=2, crops_per_video=4)
    compute_noise_features(cache, frames=4, size=24)
    return cache


@pytest.mark.parametrize("name", ["gru", "cnn3d"])
def test_temporal_models_train_on_noise_volumes(tmp_path, name):
    cache = _with_noise_features(tmp_path)
    result = train(build_config(model=name, data=str(cache), out=str(tmp_path / "run"), epochs=1, batch_size=4, device="cpu"))
    card = json.loads(result.best_checkpoint.read_text())
    assert card["training_data"]["inputs_file"].endswith("noise_volumes.npz")
    assert card["training_data"]["train"]["videos"] + card["training_data"]["val"]["videos"] == 8
    assert (result.run_dir / "metrics.csv").is_file()


def test_lgbm_trains_on_noise_stats(tmp_path):
    cache = _with_noise_features(tmp_path)
    result = train(build_config(model="lgbm_noise", data=str(cache), out=str(tmp_path / "run"), device="cpu"))
    model, card = load_checkpoint(result.best_checkpoint)
    assert card["training_data"]["inputs_file"].endswith("noise_stats.csv")
    rows = list(csv.DictReader(open(result.run_dir / "metrics.csv")))
    assert card["metrics"]["val_auc"] == result.best_val_auc == float(rows[0]["val_auc"])
    for name in ("config.yaml", "metrics.csv", "curves.png"):
        assert (result.run_dir / name).is_file()


def test_seed_study_models_need_noise_files_first(cache, tmp_path):
    for name in ("gru", "cnn3d", "lgbm_noise"):
        with pytest.raises(InputError, match="ddtool features noise"):
            train(build_config(model=name, data=str(cache), out=str(tmp_path / name), device="cpu"))


def test_crash_while_saving_state_keeps_previous_epoch_resumable(cache, tmp_path, monkeypatch):
    import ddtool.train.loop as loop

    real_save = torch.save
    calls = {"n": 0}

    def failing_save(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second epoch's state file
            Path(path).write_bytes(b"half written")
            raise OSError("disk full")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(loop.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        train(_config(cache, tmp_path / "run", max_steps=1))
    monkeypatch.setattr(loop.torch, "save", real_save)
    assert load_state(tmp_path / "run")["epoch"] == 1  # the temp file never replaced the good state
    assert not list((tmp_path / "run").glob(".*.tmp"))
    resumed = train(build_config(out=str(tmp_path / "run"), resume=True, device="cpu"))
    assert [r["epoch"] for r in resumed.history] == [1, 2]
