"""Folder scans spread over N jobs (`--shard I/N`) and merged (`ddtool index`): the shards partition the inputs, and
the merged index equals one unsharded scan's."""

from __future__ import annotations

import json

import numpy as np

from conftest import run_cli, write_video
from ddtool.scan.shards import SHARDS_FOLDER, select_inputs
from test_explain import register_tiny
from test_scan_batch import awkward_case, scan_args, strong_weights, summary_rows  # noqa: F401 (fixture)


def mixed_case(root):
    """The eight awkward names (faces), a file that is no video and a clip without a face: fake, error, inconclusive rows."""
    awkward_case(root)
    (root / "broken.mp4").write_text("not a video\n")
    noise = np.random.default_rng(0).integers(0, 255, (6, 120, 160, 3), dtype=np.uint8)
    (root / "deep" / "er").mkdir(parents=True)
    write_video(root / "deep" / "er" / "noface.mp4", list(noise))
    return root


def test_shards_partition_the_inputs_and_keep_them_when_files_are_added(tmp_path):
    from ddtool.scan.inputs import list_inputs

    case = mixed_case(tmp_path / "case")
    files = list_inputs(case)
    parts = [select_inputs(files, case, (i, 3)) for i in range(3)]
    assert sorted(p for part in parts for p in part) == sorted(files)  # every input in exactly one shard
    assert sum(len(part) for part in parts) == len(files) == 10 and all(parts)
    assert all(part == sorted(part) for part in parts)  # each in the folder's order
    (case / "zz_added.mp4").write_bytes((case / "plain.mp4").read_bytes())
    again = [select_inputs(list_inputs(case), case, (i, 3)) for i in range(3)]
    assert all(set(before) <= set(after) for before, after in zip(parts, again))  # re-listing moves no input


def test_three_shards_and_a_merge_equal_one_unsharded_scan(tmp_path, strong_weights, capsys):
    register_tiny()
    case = mixed_case(tmp_path / "case")
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    code, _, err = run_cli(scan_args(case, single, strong_weights, "--no-report"), capsys)
    assert code == 7, err  # errors, and other inputs judged manipulated
    counts = []
    for i in range(3):
        code, _, err = run_cli(scan_args(case, sharded, strong_weights, "--no-report", "--shard", f"{i}/3"), capsys)
        assert code in (1, 3, 4, 6, 7), err
        assert f"once every shard is: ddtool index {sharded}" in err and (sharded / SHARDS_FOLDER / f"shard-{i}-of-3.json").is_file()
        counts.append(len(json.loads((sharded / SHARDS_FOLDER / f"shard-{i}-of-3.json").read_text())["rows"]))
        assert not (sharded / "summary.csv").exists()  # no shard writes the index: the others may still be running
    assert sum(counts) == 10
    code, _, err = run_cli(["index", sharded], capsys)
    assert code == 7, err
    assert "index of 10 input(s) from 3 shard(s)" in err and "evidence manifest" in err
    assert summary_rows(sharded) == summary_rows(single)  # same rows, verdicts, scores, folders, in the same order
    assert (sharded / "summary.csv").read_bytes() == (single / "summary.csv").read_bytes()
    assert sorted(p.name for p in sharded.iterdir() if p.is_dir() and p.name != SHARDS_FOLDER) == sorted(p.name for p in single.iterdir() if p.is_dir())
    code, _, err = run_cli(["verify", sharded], capsys)
    assert code == 0 and "10 input folder(s)" in err, err  # a failed input gets a folder too: its error entry


def test_a_merge_refuses_missing_or_mismatched_shards(tmp_path, strong_weights, capsys):
    register_tiny()
    case = mixed_case(tmp_path / "case")
    out = tmp_path / "ev"
    code, _, err = run_cli(["index", out], capsys)
    assert code == 3 and "no such folder" in err
    out.mkdir()
    code, _, err = run_cli(["index", out], capsys)
    assert code == 3 and "no shard records" in err
    for i in (0, 2):
        run_cli(scan_args(case, out, strong_weights, "--no-report", "--shard", f"{i}/3"), capsys)
    code, _, err = run_cli(["index", out], capsys)
    assert code == 3 and "shard(s) 1/3 wrote no record yet" in err and "--resume" in err
    assert not (out / "summary.csv").exists()
    run_cli(scan_args(case, out, strong_weights, "--no-report", "--shard", "1/3", "--frames", "3"), capsys)
    code, _, err = run_cli(["index", out], capsys)
    assert code == 3 and "ran with other options" in err


def test_shard_needs_a_folder_and_out(tmp_path, strong_weights, capsys):
    register_tiny()
    case = mixed_case(tmp_path / "case")
    code, _, err = run_cli(["scan", case, "--weights", strong_weights, "--shard", "0/2"], capsys)
    assert code == 2 and "--shard" in err and "--out" in err
    code, _, err = run_cli(["scan", case / "plain.mp4", "--weights", strong_weights, "--out", tmp_path / "ev", "--shard", "0/2"], capsys)
    assert code == 3 and "is a file: scan it without --shard" in err
    code, _, err = run_cli(["scan", case, "--weights", strong_weights, "--out", tmp_path / "ev", "--shard", "2/2"], capsys)
    assert code == 3 and "need 0 <= I < N" in err


def test_an_interrupted_shard_makes_the_merged_index_incomplete_until_resumed(tmp_path, strong_weights, capsys, monkeypatch):
    import ddtool.scan.batch as batch

    register_tiny()
    case = mixed_case(tmp_path / "case")
    out = tmp_path / "ev"
    for i in (1, 2):
        run_cli(scan_args(case, out, strong_weights, "--no-report", "--shard", f"{i}/3"), capsys)
    real_write = batch.write_outputs

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "write_outputs", interrupt)
    code, _, err = run_cli(scan_args(case, out, strong_weights, "--no-report", "--shard", "0/3"), capsys)
    assert code == 130
    code, _, err = run_cli(["index", out], capsys)
    assert code == 130 and "INCOMPLETE" in err
    assert "INCOMPLETE" in (out / "index.html").read_text(encoding="utf-8")
    monkeypatch.setattr(batch, "write_outputs", real_write)
    run_cli(scan_args(case, out, strong_weights, "--no-report", "--shard", "0/3", "--resume"), capsys)
    code, _, err = run_cli(["index", out], capsys)
    assert code == 7 and "INCOMPLETE" not in err and len(summary_rows(out)) == 10


# Runs `ddtool scan` and sends its own process SIGTERM (a scheduler's time limit) on the 3rd call of write_manifest.
TERMINATED = """
import os, signal, sys
import ddtool.scan.manifest as manifest
real, calls = manifest.write_manifest, []
def write_manifest(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)
manifest.write_manifest = write_manifest
from ddtool.cli import main
main(sys.argv[1:])
"""


def test_sigterm_still_leaves_the_shard_record_and_resume_completes_it(tmp_path, capsys):
    """Slurm's time limit sends SIGTERM: the job stops as after Ctrl-C, its record says which inputs it never reached."""
    import subprocess
    import sys

    import torch

    from conftest import REPO
    from ddtool.models import create_model
    from ddtool.models.checkpoint import save_checkpoint

    case = mixed_case(tmp_path / "case")
    torch.manual_seed(3)
    save_checkpoint(create_model("meso4"), tmp_path / "meso4_seeded", "meso4", {})  # a subprocess sees only registered models
    out = tmp_path / "ev"
    args = [str(a) for a in scan_args(case, out, tmp_path / "meso4_seeded.safetensors", "--no-report", "--shard", "0/1")]
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", TERMINATED, *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 130 and "interrupted" in done.stderr, done.stderr
    record = json.loads((out / SHARDS_FOLDER / "shard-0-of-1.json").read_text())
    assert not record["complete"] and len(record["rows"]) == 10
    assert [r["verdict"] for r in record["rows"]].count("not scanned") == 8  # 2 finished, the 3rd stopped in its folder
    code, _, err = run_cli(["index", out], capsys)
    assert code == 130 and "INCOMPLETE" in err
    resumed = subprocess.run([sys.executable, "-c", "import sys; from ddtool.cli import main; main(sys.argv[1:])", *args, "--resume"],
                             env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode in (0, 1, 4, 6, 7, 8) and resumed.stderr.count("kept: ") == 2, resumed.stderr
    code, _, err = run_cli(["index", out], capsys)
    assert "INCOMPLETE" not in err and len(summary_rows(out)) == 10
