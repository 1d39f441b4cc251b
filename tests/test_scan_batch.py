"""Folder scans that never lose evidence: one folder per input whatever the names, per-input failures, the index
always written, no scanning of ddtool's own output, and --resume after kill -9 giving the uninterrupted result."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import face_frames, run_cli, write_video
from ddtool.models.checkpoint import save_checkpoint
from ddtool.scan.manifest import MANIFEST
from ddtool.scan.naming import MAX_NAME_BYTES, evidence_name
from test_explain import TinyDetector, register_tiny

REPO = Path(__file__).resolve().parents[1]
LONG_NAME = "l" * 236 + ".mp4"  # 240 characters
# The eight inputs: two pairs that flatten to one name, two non-ASCII names, a long name and a plain one.
AWKWARD = ["a b.mp4", "a_b.mp4", "sub/x.mp4", "sub__x.mp4", "证据一.mp4", "证据二.mp4", LONG_NAME, "plain.mp4"]


def awkward_case(root: Path) -> list[Path]:
    """The eight inputs, each a different little clip (so an overwritten folder shows as a wrong sha256)."""
    frames = face_frames(14, size=(160, 120))
    paths = []
    for count, name in enumerate(AWKWARD, start=4):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.append(write_video(path, frames[:count]))
    return paths


@pytest.fixture(scope="module")
def strong_weights(tmp_path_factory):
    """A tiny detector whose card claims a strong measured AUC (its verdicts are high confidence)."""
    name = register_tiny()
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    save_checkpoint(TinyDetector(fake_bias=8.0), folder / "tiny_strong", name, {}, training_data={"dataset": "unit-test"},
                    benchmark={"name": "unit bench", "split": "test", "auc": 0.97, "n_real": 50, "n_fake": 50, "level": "video"})
    return folder / "tiny_strong.safetensors"


def scan_args(case: Path, out: Path, weights: Path, *extra) -> list:
    return ["scan", case, "--weights", weights, "--frames", "2", "--threads", "1", "--out", out, *extra]


def summary_rows(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def input_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir())


def test_names_are_unique_readable_and_short():
    root = Path("/case")
    names = [evidence_name(root / n, root) for n in AWKWARD]
    assert len({n.name for n in names}) == 8
    assert [n.name for n in names][:2] == ["a b.mp4", "a_b.mp4"] and names[3].name == "sub__x.mp4"  # a file's own name, kept
    assert names[2].hashed and names[2].name.startswith("sub__x.mp4-")  # a sub-folder's input: readable + hash of its path
    assert names[4].name == "证据一.mp4" and names[5].name == "证据二.mp4"  # unicode kept
    long = names[6]
    assert long.hashed and len(long.name.encode()) <= MAX_NAME_BYTES + 13 and long.name.startswith("lll") and ".mp4-" in long.name
    assert evidence_name(root / "a:b.mp4", root).hashed  # a character no portable name holds is replaced, and the name hashed


def test_eight_awkward_names_give_eight_folders_rows_and_an_intact_manifest(tmp_path, strong_weights, capsys):
    register_tiny()
    case = tmp_path / "case"
    inputs = awkward_case(case)
    out = tmp_path / "ev"
    code, _, err = run_cli(scan_args(case, out, strong_weights), capsys)
    assert code == 1, err
    folders = input_folders(out)
    assert len(folders) == 8
    rows = summary_rows(out)
    assert len(rows) == 8 and len({r["folder"] for r in rows}) == 8 and {r["folder"] for r in rows} == {f.name for f in folders}
    top = (out / MANIFEST).read_text(encoding="utf-8")
    assert sum(line.endswith(f"/{MANIFEST}") for line in top.splitlines()) == 8
    for path in inputs:
        relative = path.relative_to(case).as_posix()
        item = json.loads((out / evidence_name(path, case).name / "result.json").read_text(encoding="utf-8"))
        assert item["evidence_folder"]["relative_path"] == relative and item["evidence_folder"]["name"] == evidence_name(path, case).name
        assert item["input"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # its own input, not a neighbour's
    assert (out / "证据一.mp4").is_dir() and (out / "a b.mp4").is_dir()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.count("<tr><td>") == 8 and "P(fake) 0-1" in index
    code, _, err = run_cli(["verify", out], capsys)
    assert code == 0 and "8 input folder(s)" in err and "8 input file(s)" in err, err


def test_a_rescan_with_out_inside_the_folder_scans_only_the_inputs(tmp_path, strong_weights, capsys):
    register_tiny()
    case = tmp_path / "case"
    awkward_case(case)
    out = case / "evidence"
    code, _, err = run_cli(scan_args(case, out, strong_weights, "--no-report"), capsys)
    assert code == 1, err
    # An earlier scan's evidence kept elsewhere in the case folder is ddtool's output too, recognised by its manifest.
    run_cli(scan_args(case, case / "older", strong_weights, "--no-report"), capsys)
    code, stdout, err = run_cli(scan_args(case, out, strong_weights, "--no-report", "--json"), capsys)
    assert code == 1, err
    paths = [i["path"] for i in json.loads(stdout)["inputs"]]
    assert len(paths) == 8 and not any("evidence" in p or "older" in p or p.endswith(".png") for p in paths)
    assert len(summary_rows(out)) == 8 and "left out" in err and "older" in err


def test_per_input_failures_stay_that_inputs_and_the_index_is_written(tmp_path, strong_weights, capsys, monkeypatch):
    import ddtool.scan.batch as batch

    register_tiny()
    case = tmp_path / "case"
    awkward_case(case)
    (case / "broken.mp4").write_text("not a video\n")
    real_write = batch.write_outputs

    def full_disk_for_one(result, folder, *args, **kwargs):
        if Path(result.path).name == "a_b.mp4":
            raise OSError(28, "No space left on device")
        return real_write(result, folder, *args, **kwargs)

    monkeypatch.setattr(batch, "write_outputs", full_disk_for_one)
    out = tmp_path / "ev"
    code, _, err = run_cli(scan_args(case, out, strong_weights, "--no-report"), capsys)
    assert code == 7, err  # failures, and other inputs judged manipulated: both show
    rows = {r["path"]: r for r in summary_rows(out)}
    assert len(rows) == 9
    full = rows[str(case / "a_b.mp4")]
    assert full["verdict"] == "error" and "No space left" in full["errors"] and "--resume" in full["errors"] and full["folder"] == ""
    assert "text file" in rows[str(case / "broken.mp4")]["errors"]
    assert sum(r["verdict"] == "fake" for r in rows.values()) == 7
    code, _, err = run_cli(["verify", out], capsys)
    assert code == 0 and "8 input folder(s)" in err and "has no evidence folder" in err


def test_a_file_name_that_is_not_utf8_is_that_inputs_error(tmp_path, strong_weights, capsys):
    """OpenCV crashes the process on such a name: it must be one input's one-line error, the batch going on."""
    register_tiny()
    case = tmp_path / "case"
    awkward_case(case)
    bad = os.fsdecode(os.fsencode(str(case)) + b"/bad\xff\xfename.mp4")
    try:
        Path(bad).write_bytes((case / "plain.mp4").read_bytes())
    except (OSError, UnicodeError):
        pytest.skip("this filesystem refuses a name that is not UTF-8")
    out = tmp_path / "ev"
    code, _, err = run_cli(scan_args(case, out, strong_weights, "--no-report"), capsys)
    assert code == 7, err
    rows = summary_rows_raw(out)
    assert len(rows) == 9 and sum("not valid UTF-8" in r["errors"] for r in rows) == 1
    code, _, err = run_cli(["verify", out], capsys)
    assert code == 0 and "9 input folder(s)" in err, err


def summary_rows_raw(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))


def test_an_interrupted_scan_writes_its_index_and_resume_completes_it(tmp_path, strong_weights, capsys, monkeypatch):
    import ddtool.scan.batch as batch

    register_tiny()
    case = tmp_path / "case"
    awkward_case(case)
    out = tmp_path / "ev"
    real_write = batch.write_outputs
    calls = []

    def interrupt_at_the_fourth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_write(*args, **kwargs)

    monkeypatch.setattr(batch, "write_outputs", interrupt_at_the_fourth)
    code, _, err = run_cli(scan_args(case, out, strong_weights, "--no-report"), capsys)
    assert code == 130 and "error: interrupted" in err
    rows = summary_rows(out)
    assert len(rows) == 8 and [r["verdict"] for r in rows].count("not scanned") == 5
    assert "INCOMPLETE" in (out / "index.html").read_text(encoding="utf-8")
    code, _, err = run_cli(["verify", out], capsys)
    assert code == 1 and "never scanned" in err
    monkeypatch.setattr(batch, "write_outputs", real_write)
    code, _, err = run_cli(scan_args(case, out, strong_weights, "--no-report", "--resume"), capsys)
    assert code == 1 and err.count("kept: ") == 3, err
    assert [r["verdict"] for r in summary_rows(out)] == ["fake"] * 8
    code, _, err = run_cli(["verify", out], capsys)
    assert code == 0 and "8 input folder(s)" in err


def test_verify_names_a_missing_path(tmp_path, capsys):
    code, _, err = run_cli(["verify", tmp_path / "nowhere"], capsys)
    assert code == 3 and "no such folder" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- kill -9, then --resume

# Runs `ddtool scan` and kills its own process with SIGKILL on the KILL_AT-th call of write_manifest.
KILLER = """
import os, signal, sys
import ddtool.scan.manifest as manifest
real, calls = manifest.write_manifest, []
def write_manifest(*args, **kwargs):
    calls.append(1)
    if len(calls) == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
manifest.write_manifest = write_manifest
from ddtool.cli import main
main(sys.argv[1:])
"""


def _ddtool(args: list, kill_at: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "KILL_AT": str(kill_at or 0), "PYTHONPATH": str(REPO)}
    code = KILLER if kill_at else "import sys; from ddtool.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True, timeout=300)


def _facts(out: Path) -> dict:
    """What must be the same after a resume as after one uninterrupted run: every row, every input's findings and files."""
    facts = {"rows": summary_rows(out)}
    for folder in input_folders(out):
        item = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        facts[folder.name] = ({k: item[k] for k in ("path", "verdict", "score", "frames", "tracks", "evidence_folder", "input")},
                              sorted(p.name for p in folder.iterdir()))
    return facts


@pytest.fixture(scope="module")
def resume_case(tmp_path_factory):
    """The eight inputs, a shipped architecture's deterministic weights (a subprocess sees only registered models),
    and one uninterrupted scan of them to compare with."""
    from ddtool.models import create_model

    root = tmp_path_factory.mktemp("resume")
    awkward_case(root / "case")
    torch.manual_seed(3)
    save_checkpoint(create_model("meso4"), root / "meso4_seeded", "meso4", {})
    weights = root / "meso4_seeded.safetensors"
    done = _ddtool(scan_args(root / "case", root / "reference", weights))
    assert done.returncode in (0, 1, 8), done.stderr
    return root, weights, _facts(root / "reference")


def test_kill_9_then_resume_gives_the_uninterrupted_result(resume_case, capsys):
    root, weights, reference = resume_case
    out = root / "killed"
    # Killed inside the third input's folder: its files written, its manifest not (the interrupted scan's
    # index handler never runs under SIGKILL; KeyboardInterrupt is tested above).
    killed = _ddtool(scan_args(root / "case", out, weights), kill_at=3)
    assert killed.returncode == -9, killed.stderr
    complete_before = sum((f / MANIFEST).is_file() for f in input_folders(out))
    assert complete_before == 2 and len(input_folders(out)) == 3 and not (out / "summary.csv").exists()
    resumed = _ddtool(scan_args(root / "case", out, weights, "--resume"))
    assert resumed.returncode in (0, 1, 8), resumed.stderr
    assert resumed.stderr.count("kept: ") == complete_before
    facts = _facts(out)
    assert facts == reference  # the same rows, findings and files as the uninterrupted scan
    code, _, err = run_cli(["verify", out], capsys)
    assert code == 0 and "8 input folder(s)" in err, err
