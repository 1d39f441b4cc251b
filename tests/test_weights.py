"""Shipped weights: discovery, card checks, scan's default, `ddtool weights`, and the offline benchmark script."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_cli
from ddtool.errors import ConfigError
from ddtool.models.checkpoint import load_checkpoint, save_checkpoint
from ddtool.weights import (
    NOT_TRAINED_ON,
    WEIGHTS_ENV,
    card_paths,
    default_weights,
    list_shipped,
    ship_checkpoint,
    shipped_weights_dir,
    verify_shipped,
)
from test_explain import TinyDetector, register_tiny

REPO = Path(__file__).resolve().parents[1]


def complete_fields(auc: float = 0.9, **extra) -> dict:
    return {
        "architecture": "tiny test detector",
        "training_data": {"summary": "12 synthetic squares (6 real, 6 fake)"},
        "training_command": "ddtool train --model tiny",
        "benchmark": {"auc": auc, "bacc": 0.8},
        "statement": f"This model was {NOT_TRAINED_ON}.",
        **extra,
    }


def ship_tiny(folder: Path, name: str, fake_bias: float = 0.0, **fields) -> Path:
    register_tiny()
    torch.manual_seed(0)
    return save_checkpoint(TinyDetector(fake_bias=fake_bias), folder / name, register_tiny(), {}, **fields)



@pytest.fixture()
def weights_dir(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv(WEIGHTS_ENV, str(folder))
    return folder


def test_env_var_picks_the_folder_and_a_bad_one_is_an_error(weights_dir, monkeypatch, tmp_path):
    assert shipped_weights_dir() == weights_dir
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=WEIGHTS_ENV):
        shipped_weights_dir()
    monkeypatch.delenv(WEIGHTS_ENV)
    assert shipped_weights_dir() == REPO / "weights"  # the source checkout's folder


def test_list_verify_and_default(weights_dir):
    ship_tiny(weights_dir, "alpha", **complete_fields(0.7))
    ship_tiny(weights_dir, "beta", **complete_fields(0.6, default=True))
    entries = {e["name"]: e for e in list_shipped()}
    assert set(entries) == {"alpha", "beta"}
    assert all(e["sha256_ok"] is True and e["problems"] == [] for e in entries.values())
    assert entries["beta"]["default"] and not entries["alpha"]["default"]
    assert entries["alpha"]["benchmark"]["auc"] == 0.7
    assert default_weights() == weights_dir / "beta.json"
    assert verify_shipped() == []


def test_no_marked_default_falls_back_to_ldfnet_then_none(weights_dir):
    ship_tiny(weights_dir, "alpha", **complete_fields())
    assert default_weights() is None
    # a card of the paper's default model, without weights that load (default_weights does not load them)
    card = json.loads((weights_dir / "alpha.json").read_text())
    (weights_dir / "ldf.json").write_text(json.dumps({**card, "model": "ldfnet", "weights_file": "alpha.safetensors"}))
    assert default_weights() == weights_dir / "ldf.json"


def test_wrong_sha256_and_missing_fields_are_reported(weights_dir, capsys):
    ship_tiny(weights_dir, "good", **complete_fields(default=True))
    bad_card = ship_tiny(weights_dir, "tampered", **complete_fields())
    ship_tiny(weights_dir, "bare", training_data={"cache": "/somewhere"})  # what a plain `ddtool train` card has
    (weights_dir / "tampered.safetensors").write_bytes((weights_dir / "tampered.safetensors").read_bytes() + b"\0")
    entries = {e["name"]: e for e in list_shipped()}
    assert entries["good"]["problems"] == []
    assert entries["tampered"]["sha256_ok"] is False and any("sha256" in p for p in entries["tampered"]["problems"])
    bare = " ".join(entries["bare"]["problems"])
    for field in ("architecture", "training_command", "benchmark", "statement"):
        assert field in bare
    assert "summary" in bare  # training data present but not saying what and how many
    problems = verify_shipped()
    assert any(p.startswith("tampered:") for p in problems) and any(p.startswith("bare:") for p in problems)
    assert bad_card.is_file()

    code, _, stderr = run_cli(["weights", "--check"], capsys)
    assert code == 3 and "tampered" in stderr and "Traceback" not in stderr
    code, stdout, _ = run_cli(["weights", "--json"], capsys)
    assert code == 0  # listing is not checking
    listed = {e["name"]: e for e in json.loads(stdout)}
    assert listed["tampered"]["sha256_ok"] is False and listed["good"]["default"] is True


def test_weights_check_passes_on_good_cards_and_table_lists_them(weights_dir, capsys):
    ship_tiny(weights_dir, "good", **complete_fields(0.875, default=True, params=1234))
    code, stdout, stderr = run_cli(["weights", "--check"], capsys)
    assert code == 0, stderr
    assert "good" in stdout and "87.5" in stdout and "1,234" in stdout and "good *" in stdout
    code, stdout, _ = run_cli(["weights", "--json", "--check"], capsys)
    (entry,) = json.loads(stdout)
    assert code == 0 and entry["training_data"]["summary"].startswith("12 synthetic squares") and entry["problems"] == []


def test_two_defaults_and_unreadable_card_are_problems(weights_dir):
    ship_tiny(weights_dir, "one", **complete_fields(default=True))
    ship_tiny(weights_dir, "two", **complete_fields(default=True))
    (weights_dir / "junk.json").write_text("{not json")
    problems = verify_shipped()
    assert any("more than one card is marked default" in p for p in problems)
    assert any(p.startswith("junk:") and "JSON" in p for p in problems)


def test_scan_uses_the_default_shipped_weights(weights_dir, face_image, capsys):
    card_path = ship_tiny(weights_dir, "tiny_shipped", fake_bias=8.0, **complete_fields(default=True))
    sha = json.loads(card_path.read_text())["sha256"]
    code, stdout, stderr = run_cli(["scan", str(face_image), "--json"], capsys)
    assert code == 1, stderr  # the shipped tiny model always says fake
    # One short line names the shipped weights (what they were trained on is in `ddtool weights` and the report).
    (line,) = [l for l in stderr.splitlines() if l.startswith("detectors:")]
    assert f"tiny_shipped {sha[:8]}" in line and len(line) < 120
    (item,) = json.loads(stdout)["inputs"]
    assert item["weights_sha256"] == sha and Path(item["weights"]).name == "tiny_shipped.safetensors"


def test_scan_without_shipped_weights_keeps_the_clear_error(weights_dir, face_image, capsys):
    code, _, stderr = run_cli(["scan", str(face_image)], capsys)
    assert code == 3 and "no shipped weights" in stderr and "--weights" in stderr


def test_explicit_weights_do_not_claim_to_be_shipped(weights_dir, face_image, tmp_path, capsys):
    ship_tiny(weights_dir, "tiny_shipped", fake_bias=8.0, **complete_fields(default=True))
    own = ship_tiny(tmp_path, "mine", fake_bias=-8.0)
    code, _, stderr = run_cli(["scan", str(face_image), "--weights", str(own.with_suffix(".safetensors"))], capsys)
    assert code == 0 and "shipped weights" not in stderr


# --------------------------------------------------------------------------- benchmark script


def load_benchmark_module():
    spec = importlib.util.spec_from_file_location("offline_benchmark", REPO / "benchmarks" / "offline.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def make_forged_cache(root: Path) -> Path:
    """Real crops grainy, the two fake methods smooth (as over-smoothed forgeries); every split holds both classes."""
    cache = root / "forged"
    (cache / "crops").mkdir(parents=True)
    rng = np.random.default_rng(3)
    rows = []
    # enough training rows for LightGBM leaves of 20 (its default minimum)
    plan = {"train": 14, "val": 3, "test": 3}
    for split, count in plan.items():
        for method, label, domain in (("real", 0, 0), ("blur", 1, 1), ("bright", 1, 2)):
            for i in range(count):
                grain = 30 if label == 0 else (4 if method == "blur" else 6)
                crop = np.clip(rng.normal(120 if method != "bright" else 170, grain, (40, 40, 3)), 0, 255).astype(np.uint8)
                rel = f"crops/{split}_{method}_{i}.png"
                cv2.imwrite(str(cache / rel), crop)
                rows.append({
                    "crop_path": rel, "video_id": f"forged/{method}/{split}_{i}", "source_path": f"src/{split}_{i}.png",
                    "frame_index": 0, "timestamp": 0.0, "x0": 0, "y0": 0, "x1": 40, "y1": 40, "track_id": 0,
                    "label": label, "domain": domain, "method": method, "split": split, "dataset": "forged",
                })
    pd.DataFrame(rows).to_csv(cache / "manifest.csv", index=False)
    return cache


def test_benchmark_runs_trains_evaluates_and_ships(tmp_path, weights_dir):
    bench = load_benchmark_module()
    cache = make_forged_cache(tmp_path)
    out = tmp_path / "bench"
    options = bench.BenchmarkOptions(
        data=str(cache), out=str(out), models=("lgbm_noise", "mesoinception4"), holdouts=("bright",),
        size=32, epochs=1, max_steps=1, batch_size=4, device="cpu", command="python benchmarks/offline.py --test",
    )
    result = bench.run_benchmark(options, progress=lambda message: None)
    rows = result.rows
    assert list(rows["entry"]) == ["lgbm_noise", "lgbm_noise", "mesoinception4", "mesoinception4"]
    assert list(rows["protocol"]) == ["intra", "lomo"] * 2
    intra = rows[rows["protocol"] == "intra"]
    lomo = rows[rows["protocol"] == "lomo"]
    assert (intra["n_real"] == 3).all() and (intra["n_fake"] == 6).all()
    assert (lomo["n_real"] == 3).all() and (lomo["n_fake"] == 3).all()  # held-out fakes only
    assert rows["auc"].between(0, 1).all()
    # grain separates the classes perfectly: the boosted trees on noise-residual statistics must find it
    assert intra[intra["entry"] == "lgbm_noise"]["auc"].iloc[0] > 0.9
    lgbm_lomo_card = json.loads(Path(lomo[lomo["entry"] == "lgbm_noise"]["checkpoint"].iloc[0]).read_text())
    assert lgbm_lomo_card["training_data"]["holdout_method"] == "bright"
    for name in ("results.csv", "results.json", "results.md", "roc.png"):
        assert (out / name).is_file()
    markdown = (out / "results.md").read_text()
    assert "python benchmarks/offline.py --test" in markdown and "LightGBM" in markdown and "LOMO bright AUC" in markdown

    # a second call reuses the finished runs instead of training again
    before = (out / "runs" / "mesoinception4" / "intra" / "best.safetensors").stat().st_mtime_ns
    bench.run_benchmark(options, progress=lambda message: None)
    assert (out / "runs" / "mesoinception4" / "intra" / "best.safetensors").stat().st_mtime_ns == before

    card_path = bench.ship("meso_test:" + str(out / "runs" / "mesoinception4" / "intra"), out, None, default=True)
    assert card_path == weights_dir / "meso_test.json"
    (entry,) = list_shipped()
    assert entry["problems"] == [] and entry["sha256_ok"] and entry["default"]
    assert entry["benchmark"]["auc"] == pytest.approx(intra[intra["entry"] == "mesoinception4"]["auc"].iloc[0])
    assert "bright" in entry["benchmark"]["lomo_auc"]
    assert "ddtool train --model mesoinception4" in entry["training_command"] and "--size 32" in entry["training_command"]
    assert "14 real" in entry["training_data"]["summary"] and entry["params"] > 1000
    # The data is described by name: the cache folder's name, never where it lay on the training machine.
    assert card_paths(json.loads(card_path.read_text())) == [] and entry["training_data"]["cache"] == cache.name
    assert f"--data {cache.name.upper()}" in entry["training_command"] and str(tmp_path) not in card_path.read_text()
    model, _ = load_checkpoint(card_path)
    assert sum(p.numel() for p in model.parameters()) == entry["params"]


def test_ship_refuses_incomplete_metrics_and_bad_names(tmp_path, weights_dir):
    card = ship_tiny(tmp_path, "run_best", training_data={"cache": "/c", "train": {"crops": 2}})
    with pytest.raises(ConfigError, match="auc"):
        ship_checkpoint(card, "tiny_ship", benchmark={"bacc": 0.5})
    assert not (weights_dir / "tiny_ship.safetensors").exists()  # nothing half-shipped
    with pytest.raises(ConfigError, match="plain file stem"):
        ship_checkpoint(card, "../escape", benchmark={"auc": 0.5})


def test_benchmark_rejects_unknown_models_and_methods(tmp_path):
    bench = load_benchmark_module()
    cache = make_forged_cache(tmp_path)
    with pytest.raises(ConfigError, match="unknown model"):
        bench.run_benchmark(bench.BenchmarkOptions(data=str(cache), models=("nope",)), progress=lambda m: None)
    with pytest.raises(ConfigError, match="not in the cache"):
        bench.run_benchmark(bench.BenchmarkOptions(data=str(cache), models=("lgbm_noise",), holdouts=("Deepfakes",)), progress=lambda m: None)


def test_portable_command_keeps_names_and_quoted_words():
    """A recorded command names data by placeholder yet still parses into the same words (a NAME=PATH argument with
    a space in NAME stayed two broken words before)."""
    import shlex

    from ddtool.weights import portable_command

    line = ("python benchmarks/realdf.py --extra-labels 'FF++ test=/srv/me/labels/ffpp_test.csv' "
            "--extra-labels Celeb-DF=/srv/me/labels/celebdf.csv --out=/srv/me/out --json docs/x.json --frames 32")
    portable = portable_command(line)
    assert shlex.split(portable) == ["python", "benchmarks/realdf.py", "--extra-labels", "FF++ test=EXTRA_LABELS",
                                     "--extra-labels", "Celeb-DF=EXTRA_LABELS", "--out=OUT", "--json", "docs/x.json", "--frames", "32"]
    assert "/srv/me" not in portable
    assert portable_command("ddtool train --data offline_cache2/cache --out /tmp/runs/x") == "ddtool train --data OFFLINE_CACHE2 --out OUT"
