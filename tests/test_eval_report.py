"""`ddtool eval`, `ddtool data` and `ddtool report` end to end on tiny generated caches.

The detector is a registered probe whose fake logit grows with the mean
brightness of the (normalised) crop; fake crops are bright, real crops dark,
so every expected metric is known in advance. An inverted copy of it is the
"bad" run that must never be marked best.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
from typer.testing import CliRunner

from ddtool.cli import app, main
from ddtool.errors import ConfigError, InputError
from ddtool.evaluate.evaluation import evaluate_checkpoint
from ddtool.evaluate.registry_data import add_dataset, list_datasets, resolve_dataset
from ddtool.evaluate.report import build_report
from ddtool.models.registry import ModelSpec, register_model
from ddtool.models.checkpoint import save_checkpoint

PROBE = "tiny_brightness_probe"


class BrightnessProbe(nn.Module):
    """logits = (0, gain * mean(x) + bias): a bright face scores fake."""

    def __init__(self, gain: float = 4.0):
        super().__init__()
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[0.0], [gain]]))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (3, 24, 24), "crops must be resized to the spec's input size"
        return self.head(x.mean(dim=(1, 2, 3)).unsqueeze(1))


@pytest.fixture(autouse=True)
def probe_model() -> str:
    register_model(ModelSpec(name=PROBE, builder=BrightnessProbe, description="test probe", family="test", input_size=24))
    return PROBE


def make_cache(root: Path, name: str, with_splits: bool) -> Path:
    """3 real + 4 fake videos (two fake methods share the file name 000_003), 3 crops each.

    With splits, videos 1 and 5 (one real, one fake) are train and the other five test.
    """
    cache = root / name
    (cache / "crops").mkdir(parents=True)
    videos = [("real", 0, 0, "000"), ("real", 0, 0, "001"), ("real", 0, 0, "002"),
              ("Deepfakes", 1, 1, "000_003"), ("Face2Face", 1, 2, "000_003"), ("Deepfakes", 1, 1, "004_005"),
              ("Face2Face", 1, 2, "006_007")]
    rows = []
    rng = np.random.default_rng(len(name))
    for v, (method, label, domain, stem) in enumerate(videos):
        for frame in range(3):
            level = int(rng.integers(150, 220) if label else rng.integers(30, 100))
            crop = np.full((16, 16, 3), level, np.uint8)
            rel = f"crops/{method}_{stem}_{frame}.png"
            cv2.imwrite(str(cache / rel), crop)
            rows.append({
                "crop_path": rel, "video_id": f"{name}/{method}/{stem}.mp4", "source_path": f"/videos/{method}/{stem}.mp4",
                "frame_index": frame * 10, "timestamp": frame * 0.4, "x0": 0, "y0": 0, "x1": 16, "y1": 16, "track_id": 0,
                "label": label, "domain": domain, "method": method,
                "split": ("train" if v % 2 else "test") if with_splits and v not in (0, 3, 4) else ("test" if with_splits else ""),
                "dataset": name,
            })
    pd.DataFrame(rows).to_csv(cache / "manifest.csv", index=False)
    return cache


def make_run(root: Path, name: str, gain: float, data: Path, **config) -> Path:
    run = root / name
    run.mkdir(parents=True)
    save_checkpoint(BrightnessProbe(gain), run / "best.safetensors", PROBE, {"gain": gain},
                    config={"model": PROBE, "data": str(data), "lr": 1e-3, **config}, training_data={"cache": str(data)})
    return run


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("DDTOOL_HOME", str(tmp_path / "home"))
    cache_a = make_cache(tmp_path, "dsa", with_splits=True)
    cache_b = make_cache(tmp_path, "dsb", with_splits=False)
    good = make_run(tmp_path, "good", 4.0, cache_a)
    bad = make_run(tmp_path, "bad", -4.0, cache_a, lr=1e-4)
    return tmp_path, cache_a, cache_b, good, bad


def test_evaluate_checkpoint_end_to_end_and_reuse(setup):
    tmp_path, cache_a, _, good, _ = setup
    evaluation = evaluate_checkpoint(good / "best.json", cache_a, split="test", device="cpu", batch_size=4)
    assert not evaluation.reused
    predictions = pd.read_csv(evaluation.out_dir / "predictions.csv")
    assert {"crop_path", "video_id", "label", "domain", "method", "score"} <= set(predictions.columns)
    manifest = pd.read_csv(cache_a / "manifest.csv")
    assert len(predictions) == (manifest["split"] == "test").sum()
    metrics = json.loads((evaluation.out_dir / "metrics.json").read_text())
    assert metrics["frame"]["auc"] == 1.0 and metrics["video"]["auc"] == 1.0
    # the two 000_003 videos of different methods stay apart
    assert metrics["n_videos"] == predictions["video_id"].nunique() == 5
    assert {"dsa/Deepfakes/000_003.mp4", "dsa/Face2Face/000_003.mp4"} <= set(evaluation.videos["video_id"])
    assert set(metrics["per_method"]) == {"Deepfakes", "Face2Face"}
    # scores are the probe's softmax, computed independently here
    crop = cv2.cvtColor(cv2.imread(str(cache_a / predictions.loc[0, "crop_path"])), cv2.COLOR_BGR2RGB) / 255.0
    normalised = (crop - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    expected = 1 / (1 + np.exp(-4.0 * normalised.mean()))
    assert predictions.loc[0, "score"] == pytest.approx(expected, abs=1e-5)

    again = evaluate_checkpoint(good / "best.json", cache_a, split="test", device="cpu", rule="max")
    assert again.reused and again.metrics["aggregate"] == "max"
    # a changed manifest invalidates the cached predictions
    manifest.to_csv(cache_a / "manifest.csv", index=False, lineterminator="\r\n")
    assert not evaluate_checkpoint(good / "best.json", cache_a, split="test", device="cpu").reused


def test_eval_rejects_bad_inputs(setup):
    tmp_path, cache_a, _, good, _ = setup
    with pytest.raises(InputError, match="no rows in split 'val'"):
        evaluate_checkpoint(good / "best.json", cache_a, split="val", device="cpu")
    (cache_a / pd.read_csv(cache_a / "manifest.csv").query("split == 'test'").iloc[0]["crop_path"]).write_bytes(b"broken")
    with pytest.raises(InputError, match="face crop .* unreadable"):
        evaluate_checkpoint(good / "best.json", cache_a, split="test", device="cpu")


def test_eval_cli(setup):
    tmp_path, cache_a, _, good, _ = setup
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--run", str(good), "--data", str(cache_a), "--device", "cpu", "--out", str(tmp_path / "ev"), "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ev" / "metrics.json").is_file() and (tmp_path / "ev" / "predictions.csv").is_file()
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["video"]["bacc"] == 1.0
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--run", str(tmp_path / "nowhere"), "--data", str(cache_a)])
    assert exit_info.value.code == 3


def test_data_registry(setup):
    tmp_path, cache_a, cache_b, _, _ = setup
    add_dataset("celebdf", cache_b)
    assert list_datasets() == {"celebdf": str(cache_b.resolve())}
    assert resolve_dataset("celebdf") == ("celebdf", cache_b.resolve())
    assert resolve_dataset(str(cache_a))[0] == "dsa"
    with pytest.raises(ConfigError, match="neither a registered dataset"):
        resolve_dataset("dfdc")
    with pytest.raises(InputError, match="not a face cache"):
        add_dataset("empty", tmp_path)
    result = CliRunner().invoke(app, ["data", "list"])
    assert result.exit_code == 0 and "celebdf" in result.output


def test_cross_report_two_runs_two_datasets(setup):
    tmp_path, cache_a, cache_b, good, bad = setup
    add_dataset("dsb_named", cache_b)
    report = build_report([good, bad], cross=[str(cache_a), "dsb_named"], out=tmp_path / "rep", level="video", device="cpu")
    for name in ("report.md", "report.csv", "report.html", "roc.png"):
        assert (tmp_path / "rep" / name).is_file()
    table = pd.read_csv(tmp_path / "rep" / "report.csv")
    metric_columns = ["dsa:auc", "dsa:bacc", "dsb_named:auc", "dsb_named:bacc"]
    assert [c for c in table.columns if c.count(":") == 1 and c.rsplit(":", 1)[1] in ("auc", "bacc")] == metric_columns
    assert table.loc[0, "dsa:auc"] == 1.0 and table.loc[1, "dsa:auc"] == 0.0
    assert report.best == {c: [0] for c in metric_columns}

    md = (tmp_path / "rep" / "report.md").read_text()
    good_row = next(line for line in md.splitlines() if line.startswith("| tiny_brightness_probe") and "good/best" in line)
    bad_row = next(line for line in md.splitlines() if "bad/best" in line)
    assert good_row.count("**100.00") == 4 and "**" not in bad_row

    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("class=best") == 4
    image = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert image and base64.b64decode(image.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(?!data:)', page), "the page must not load external assets"

    # a second report reuses every cached evaluation
    again = build_report([good, bad], cross=[str(cache_a), "dsb_named"], out=tmp_path / "rep2", device="cpu")
    assert all(e.reused for e in again.evaluations.values())


def test_intra_dataset_and_ablation_report(setup):
    tmp_path, cache_a, _, good, bad = setup
    result = CliRunner().invoke(app, ["report", "--runs", str(good), "--runs", str(bad), "--ablation", "--out", str(tmp_path / "abl"),
                                      "--level", "frame", "--metric", "auc,eer", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "abl" / "report.csv")
    # the switches that differ (gain, lr) become columns; shared ones (model) do not
    assert {"gain", "lr"} <= set(table.columns) and "model" in table.columns
    assert "dsa:auc" in table.columns and "dsa:eer" in table.columns
    assert table.loc[0, "dsa:eer"] == 0.0 and table.loc[1, "dsa:eer"] == 1.0
    md = (tmp_path / "abl" / "report.md").read_text()
    assert "| Run | gain | lr |" in md
    with pytest.raises(ConfigError, match="unknown metric"):
        build_report([good], metrics=["f1"], out=tmp_path / "x")


def test_eval_seed_study_models_from_noise_files(setup):
    """LightGBM scores noise_stats.csv rows, the GRU scores noise_volumes.npz sequences."""
    from ddtool.data.dataset import load_feature_table, load_video_arrays
    from ddtool.features.noise import compute_noise_features
    from ddtool.models import create_model

    tmp_path, cache_a, _, _, _ = setup
    compute_noise_features(cache_a, frames=3)
    rows, features, names = load_feature_table(cache_a)
    lgbm = create_model("lgbm_noise", n_estimators=5, min_child_samples=2)
    lgbm.fit(features, rows["label"].to_numpy(), feature_names=names)
    card = save_checkpoint(lgbm, tmp_path / "lgbm" / "best.json", "lgbm_noise", {"n_estimators": 5, "min_child_samples": 2})
    evaluation = evaluate_checkpoint(card, cache_a, split="test", device="cpu")
    test_rows = rows["split"] == "test"
    assert len(evaluation.predictions) == test_rows.sum()
    np.testing.assert_allclose(evaluation.predictions["score"], lgbm.predict_proba(features[test_rows.to_numpy()])[:, 1], atol=1e-6)
    assert evaluation.metrics["n_videos"] == 5

    torch.manual_seed(0)
    gru = create_model("gru")
    card = save_checkpoint(gru, tmp_path / "gru" / "best.safetensors", "gru", {})
    evaluation = evaluate_checkpoint(card, cache_a, split="test", device="cpu")
    videos, inputs = load_video_arrays(cache_a, "sequence")
    test_videos = (videos["split"] == "test").to_numpy()
    with torch.no_grad():
        expected = torch.softmax(gru.eval()(torch.from_numpy(inputs[test_videos])), dim=1)[:, 1].numpy()
    np.testing.assert_allclose(evaluation.predictions["score"], expected, atol=1e-5)
    assert evaluation.metrics["frame"]["n"] == evaluation.metrics["video"]["n"] == 5
