"""Issue 15, first contact: the messages, outputs and help a new user meets in the first hour.

Messages are checked for their key words and exit codes; help and tables are
rendered with a non-terminal stdout (capsys), as in a pipe or a file; the
report's intervals are checked against a bootstrap this file computes itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import run_cli
from ddtool.cli import main
from ddtool.errors import InputError
from ddtool.evaluate.evaluation import default_out_dir, evaluate_checkpoint
from ddtool.evaluate.metrics import bootstrap_intervals
from ddtool.evaluate.report import build_report
from ddtool.media.video import probe, read_image
from test_eval_report import make_cache, make_run, probe_model, setup  # noqa: F401  (fixtures; probe_model registers the probe)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_JPEG = REPO / "examples" / "astronaut.jpg"
COMMANDS = ("scan", "explain", "extract", "features", "features noise", "train", "eval", "report", "data", "data add", "data list",
            "data remove", "models", "profile", "offline", "offline fetch", "offline faces", "offline forge", "weights")



# --------------------------------------------------------------------------- checkpoints that are not there


def test_missing_weights_name_what_is_missing_and_what_a_checkpoint_is(tmp_path, capsys):
    code, _, err = run_cli(["scan", EXAMPLE_JPEG, "--weights", "/nope/model.safetensors"], capsys)
    assert code == 3 and "Traceback" not in err
    assert "/nope/model.safetensors" in err and "/nope/model.json" in err and "neither the weights file nor its card" in err
    assert "NAME.safetensors" in err and "NAME.json" in err and "ddtool weights" in err
    code, _, err = run_cli(["scan", EXAMPLE_JPEG, "--weights", REPO / "examples" / "demo.csv"], capsys)
    assert code == 3 and "demo.csv is not a checkpoint" in err and "demo.csv.json" not in err and "ddtool weights" in err
    lonely = tmp_path / "lonely.safetensors"
    lonely.write_bytes(b"x")
    code, _, err = run_cli(["scan", EXAMPLE_JPEG, "--weights", lonely], capsys)
    assert code == 3 and "has no model card" in err and "lonely.json is missing" in err


def test_weights_accepts_a_shipped_name(tmp_path, monkeypatch):
    from ddtool.weights import resolve_weights

    monkeypatch.setenv("DDTOOL_WEIGHTS", str(tmp_path))
    (tmp_path / "mine.json").write_text("{}")
    monkeypatch.chdir(tmp_path.parent)
    assert resolve_weights("mine") == tmp_path / "mine.json"
    assert resolve_weights("mine.safetensors") == tmp_path / "mine.json"
    assert resolve_weights("other") == Path("other")  # unknown: left for the loader to explain


def test_report_runs_that_do_not_exist(tmp_path, capsys):
    code, _, err = run_cli(["report", "--runs", tmp_path / "nope", "--out", tmp_path / "rep"], capsys)
    assert code == 3 and "no such run folder or checkpoint" in err and "best.json" in err
    assert "model card not found" not in err
    assert not (tmp_path / "rep").exists()


# --------------------------------------------------------------------------- usage errors: one line, the range


@pytest.mark.parametrize("args, option", [
    (["explain", "--afam", "0", "--data", "."], "--afam"),
    (["explain", "--gradcam", "x.mp4", "--frames", "0"], "--frames"),
    (["explain", "--gradcam", "x.mp4", "--frames", "-3"], "--frames"),
    (["scan", "x.mp4", "--frames", "0"], "--frames"),
])
def test_out_of_range_values_are_one_line_with_the_allowed_range(args, option, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert option in lines[0] and "at least 1" in lines[0] and "--help" in lines[0]
    assert "╭" not in err and "Usage:" not in err


def test_afam_count_is_checked_before_faces_are_read(tmp_path):
    from ddtool.errors import ConfigError
    from ddtool.explain.afam import run_afam

    with pytest.raises(ConfigError, match="at least 1"):
        run_afam([], tmp_path / "no-such-folder", [0], tmp_path)


def test_unknown_option_and_bare_command_still_behave(capsys):
    code, _, err = run_cli(["scan", "--bogus"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--bogus" in err
    code, out, _ = run_cli([], capsys)
    assert code == 2 and "Usage" in out  # no arguments: the help, as before
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.startswith("ddtool ")


# --------------------------------------------------------------------------- decoder noise


def _corrupt_jpeg(path: Path) -> Path:
    data = EXAMPLE_JPEG.read_bytes()
    path.write_bytes(data[:60000] + b"\xff\xd9")  # cut mid-scan, end marker kept: libjpeg decodes it grey and complains
    return path


def test_libjpeg_complaint_goes_into_the_files_error_not_the_terminal(tmp_path, capfd):
    bad = _corrupt_jpeg(tmp_path / "cut.jpg")
    with pytest.raises(InputError) as info:
        probe(bad)
    message = str(info.value)
    assert "cut.jpg" in message and "truncated or corrupt" in message and "Corrupt JPEG data" in message
    assert "JPEG" not in capfd.readouterr().err  # nothing reached fd 2
    assert read_image(EXAMPLE_JPEG).shape == (512, 512, 3)  # a whole file still reads
    assert capfd.readouterr().err == ""


def test_scan_of_a_corrupt_jpeg_prints_one_error_line(tmp_path, capfd):
    bad = _corrupt_jpeg(tmp_path / "cut.jpg")
    with pytest.raises(SystemExit) as exit_info:
        main(["scan", str(bad), "--untrained", "--model", "meso4"])
    err = capfd.readouterr().err
    assert exit_info.value.code == 3
    assert err.count("Corrupt JPEG data") == 1 and "error: " in err  # inside the item's error, once


# --------------------------------------------------------------------------- where evaluations go


def test_loose_checkpoints_are_never_evaluated_beside_their_weights(setup, monkeypatch):
    tmp_path, cache_a, _, good, _ = setup
    shipped = tmp_path / "weights"
    shipped.mkdir()
    shutil.copy(good / "best.safetensors", shipped / "probe_shipped.safetensors")
    card = json.loads((good / "best.json").read_text())
    (shipped / "probe_shipped.json").write_text(json.dumps({**card, "weights_file": "probe_shipped.safetensors"}))
    report = build_report([shipped / "probe_shipped.json"], cross=[str(cache_a)], out=tmp_path / "rep", device="cpu")
    assert not (shipped / "eval").exists() and sorted(p.name for p in shipped.iterdir()) == ["probe_shipped.json", "probe_shipped.safetensors"]
    (evaluation,) = report.evaluations.values()
    assert evaluation.out_dir.parent == tmp_path / "rep" / "eval"
    monkeypatch.setenv("DDTOOL_CACHE", str(tmp_path / "usercache"))
    alone = evaluate_checkpoint(shipped / "probe_shipped.json", cache_a, device="cpu")
    assert alone.out_dir.parent == tmp_path / "usercache" / "eval" and not (shipped / "eval").exists()
    # a run folder's checkpoint keeps its evaluations in the run
    assert default_out_dir(good / "best.json", cache_a, "test", "0" * 64).parent == good / "eval"


# --------------------------------------------------------------------------- sample sizes and intervals


def _reference_bootstrap(y, s, resamples=2000, seed=123):
    """Independent stratified percentile bootstrap of AUC (sklearn) and BACC at 0.5."""
    rng = np.random.default_rng(seed)
    real, fake = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    aucs, baccs = [], []
    for _ in range(resamples):
        idx = np.r_[rng.choice(real, real.size), rng.choice(fake, fake.size)]
        yy, ss = y[idx], s[idx]
        aucs.append(roc_auc_score(yy, ss))
        baccs.append(0.5 * ((ss[yy == 1] >= 0.5).mean() + (ss[yy == 0] < 0.5).mean()))
    return np.percentile(aucs, [2.5, 97.5]), np.percentile(baccs, [2.5, 97.5])


def test_bootstrap_intervals_match_an_independent_bootstrap():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60, int), np.ones(40, int)]
    s = np.clip(np.r_[rng.normal(0.4, 0.15, 60), rng.normal(0.6, 0.15, 40)], 0, 1)
    ours = bootstrap_intervals(y, s, 0.5)
    auc_ref, bacc_ref = _reference_bootstrap(y, s)
    assert ours["auc"] == pytest.approx(list(auc_ref), abs=0.02)
    assert ours["bacc"] == pytest.approx(list(bacc_ref), abs=0.02)
    assert ours["auc"][0] < roc_auc_score(y, s) < ours["auc"][1]
    assert ours["eer"][0] < ours["eer"][1]


def test_faces_are_resampled_by_video_so_intervals_are_not_overconfident():
    rng = np.random.default_rng(1)
    video_scores = np.r_[rng.normal(0.45, 0.15, 8), rng.normal(0.55, 0.15, 8)]
    y = np.repeat(np.r_[np.zeros(8, int), np.ones(8, int)], 20)
    s = np.repeat(video_scores, 20) + rng.normal(0, 0.01, y.size)  # 20 near-identical faces per video
    groups = np.repeat(np.arange(16), 20)
    by_face, by_video = bootstrap_intervals(y, s), bootstrap_intervals(y, s, groups=groups)
    assert by_video["auc"][1] - by_video["auc"][0] > 2 * (by_face["auc"][1] - by_face["auc"][0])
    one_each = bootstrap_intervals([0, 1], [0.2, 0.8])
    assert one_each == {"auc": None, "bacc": None, "eer": None}  # no zero-width "certainty"


def test_report_and_eval_carry_sample_sizes_intervals_and_the_small_sample_flag(setup, capsys):
    tmp_path, cache_a, cache_b, good, bad = setup
    code, out, err = run_cli(["report", "--runs", good, "--runs", bad, "--cross", cache_b, "--out", tmp_path / "rep",
                              "--metric", "auc,bacc,eer", "--device", "cpu", "--json"], capsys)
    assert code == 0, err
    document = json.loads(out)
    assert document["schema"] == "ddtool.report/1"
    cell = document["rows"][1]["test_sets"]["dsb"]
    assert cell["videos_real"] == 3 and cell["videos_fake"] == 4 and cell["faces"] == 21 and cell["small_sample"] is True
    # the interval the report gives is the bootstrap of the video scores it scored
    videos = pd.read_csv(bad / "eval" / next(p.name for p in (bad / "eval").iterdir() if p.name.startswith("dsb-")) / "video_predictions.csv")
    y, s = videos["label"].to_numpy(), videos["score"].to_numpy()
    expected = bootstrap_intervals(y, s, 0.5)
    assert cell["auc"]["ci95"] == pytest.approx(expected["auc"]) and cell["bacc"]["ci95"] == pytest.approx(expected["bacc"])
    auc_ref, _ = _reference_bootstrap(y, s)
    assert cell["auc"]["ci95"] == pytest.approx(list(auc_ref), abs=0.08)  # 3 vs 4 videos: coarse, but the same bootstrap
    assert cell["auc"]["value"] == pytest.approx(roc_auc_score(y, s))
    # labels say model, weights and training cache
    assert document["rows"][0]["run"] == "tiny_brightness_probe · good/best · trained on dsa"
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "3/4 videos, 21 faces *" in md and "bootstrap 95% interval" in md and "small sample" in md
    csv = pd.read_csv(tmp_path / "rep" / "report.csv")
    assert {"dsb:auc:low", "dsb:auc:high", "dsb:videos_real", "dsb:faces", "dsb:small_sample"} <= set(csv.columns)

    code, out, err = run_cli(["eval", "--run", bad, "--data", cache_b, "--split", "all", "--device", "cpu", "--json"], capsys)
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["schema"] == "ddtool.eval/1" and metrics["video"]["n_videos_real"] == 3
    assert metrics["video"]["ci95"]["auc"] == pytest.approx(expected["auc"]) and metrics["video"]["small_sample"] is True
    assert metrics["frame"]["bootstrap"]["unit"] == "video"
    code, out, err = run_cli(["eval", "--run", bad, "--data", cache_b, "--split", "all", "--device", "cpu"], capsys)
    assert code == 0 and "small sample: 3 real and 4 fake videos" in err and "[" in out


def test_extract_json_has_a_schema(tmp_path, capsys):
    folder = tmp_path / "ds"
    (folder / "real").mkdir(parents=True)
    shutil.copy(EXAMPLE_JPEG, folder / "real" / "a.jpg")
    listing = tmp_path / "list.csv"
    listing.write_text(f"path,label\n{folder / 'real' / 'a.jpg'},real\n")
    code, out, err = run_cli(["extract", listing, "--out", tmp_path / "cache", "--json"], capsys)
    assert code == 0, err
    document = json.loads(out)
    assert document["schema"] == "ddtool.extract/1" and document["n_crops"] == 1 and document["manifest"].endswith("manifest.csv")


# --------------------------------------------------------------------------- help and tables in a pipe


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_bool_placeholder_and_cuts_nothing(command, capsys):
    code, out, _ = run_cli([*command.split(), "--help"], capsys)
    assert code == 0
    assert "<bool>" not in out and "…" not in out


def test_train_help_shows_its_whole_default(capsys):
    _, out, _ = run_cli(["train", "--help"], capsys)
    assert "runs/" in " ".join(out.split()) and "start time" in " ".join(out.replace("│", " ").split())


def test_result_tables_are_full_width_in_a_pipe(tmp_path, monkeypatch, capsys):
    from ddtool.cli.app import out

    monkeypatch.delenv("COLUMNS", raising=False)
    assert not out.is_terminal and out.width >= 400
    card = {"model": "ldfnet", "weights_file": "w" * 70 + ".safetensors", "training_data": {"summary": "s"}}
    monkeypatch.setenv("DDTOOL_WEIGHTS", str(tmp_path))
    (tmp_path / ("a_really_long_shipped_model_name_" + "x" * 40 + ".json")).write_text(json.dumps(card))
    _, stdout, _ = run_cli(["weights"], capsys)
    assert "a_really_long_shipped_model_name_" + "x" * 40 in stdout  # on stdout, whole
    _, stdout, _ = run_cli(["models", "--no-macs"], capsys)
    assert "…" not in stdout and max(len(line) for line in stdout.splitlines()) > 80


# --------------------------------------------------------------------------- torchrun: rank 0 reports


@pytest.mark.parametrize("is_main", [True, False])
def test_only_rank_zero_prints_the_training_summary(is_main, tmp_path, monkeypatch, capsys):
    import ddtool.train.loop as loop

    def fake_train(config):
        return loop.RunResult(tmp_path, tmp_path / "best.json", tmp_path / "last.json", 1 if is_main else 0,
                              0.9 if is_main else float("-inf"), [], config, is_main=is_main)

    monkeypatch.setattr(loop, "train", fake_train)
    cache = make_cache(tmp_path, "c", with_splits=False)
    code, _, err = run_cli(["train", "--model", "ldfnet", "--data", cache, "--out", tmp_path / "run", "--device", "cpu"], capsys)
    assert code == 0
    assert ("best epoch 1: val AUC 0.9000" in err) == is_main and "-inf" not in err


def test_distributed_result_flag_follows_the_rank():
    from ddtool.train.distributed import Distributed as _Distributed

    assert _Distributed(rank=0, world_size=2).is_main and not _Distributed(rank=1, world_size=2).is_main


# --------------------------------------------------------------------------- a first training run


def test_synth_trains_on_a_real_only_training_split():
    from ddtool.data.dataset import split_train_val

    frame = pd.DataFrame({
        "video_id": ["a", "b", "c", "d"], "label": [0, 0, 0, 1], "domain": [0, 0, 0, 1],
        "method": ["real", "real", "real", "face_swap"], "split": ["train", "train", "val", "val"],
    })
    with pytest.raises(InputError, match="training rows have no fake"):
        split_train_val(frame)
    split = split_train_val(frame, need_fakes=False)
    assert set(split.train["label"]) == {0} and set(split.val["label"]) == {0, 1}


def test_train_demo_list_names_media_that_exist(tmp_path):
    out = tmp_path / "faces.csv"
    subprocess.run([sys.executable, str(REPO / "examples" / "train_demo_list.py"), str(out)], check=True, capture_output=True)
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["path", "label", "method", "split"]
    assert all(Path(p).is_file() for p in rows["path"])
    assert set(rows.loc[rows["split"] == "train", "label"]) == {"real"} and set(rows.loc[rows["split"] == "val", "label"]) == {"real", "fake"}


def test_only_c_level_writes_are_captured():
    import os

    from ddtool.media.native_stderr import captured_native_stderr

    with captured_native_stderr() as captured:
        os.write(2, b"Premature end of JPEG file\n")
        sys.stderr.write("progress line from python\n")
    assert captured.lines == ["Premature end of JPEG file"]
