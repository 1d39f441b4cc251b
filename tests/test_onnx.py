"""ONNX exports on onnxruntime: same faces, same P(fake) as the torch checkpoint; the card checks; scan without torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import FACE_IMAGE, REPO, run_cli
from ddtool.errors import CheckpointError, ConfigError

SHIPPED = REPO / "weights"
# Every shipped image model has an export; the panel's two first.
EXPORTED = ["sbi_efficientnet_lite0", "meso4_f2f", "meso4_df", "mesoinception4_df", "mesoinception4_f2f", "mesoinception4_offline", "ldfnet_offline"]
TOLERANCE = 1e-4  # the export command's own check, and the issue's


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """Real face crops of different sizes and framings (the astronaut photo), RGB uint8."""
    rgb = cv2.imread(str(FACE_IMAGE))[:, :, ::-1]
    boxes = [(150, 50, 290, 190), (165, 66, 276, 177), (120, 20, 320, 220), (175, 76, 266, 167), (140, 60, 300, 200)]
    return [np.ascontiguousarray(rgb[y0:y1, x0:x1]) for x0, y0, x1, y1 in boxes]


@pytest.mark.parametrize("name", EXPORTED)
def test_shipped_export_scores_like_torch_and_a_batch_of_one_like_a_batch(name, faces):
    from ddtool.scan.detector import load_detector

    onnx = load_detector(weights=name, engine="onnxruntime")
    torch_model = load_detector(weights=name, engine="torch")
    assert onnx.engine == "onnxruntime" and torch_model.engine == "torch" and onnx.model is None  # no torch network built
    assert onnx.preprocess == torch_model.preprocess and onnx.key == torch_model.key == name
    scores = onnx.fake_probability(faces, batch=len(faces))
    np.testing.assert_allclose(scores, torch_model.fake_probability(faces, batch=len(faces)), rtol=0, atol=TOLERANCE)
    one_by_one = np.concatenate([onnx.fake_probability([face], batch=1) for face in faces])
    np.testing.assert_allclose(one_by_one, scores, rtol=0, atol=1e-6)


@pytest.fixture()
def meso_copy(tmp_path):
    """The shipped meso4_f2f checkpoint copied without its export (card as before `export-onnx`)."""
    for suffix in (".safetensors", ".json"):
        shutil.copy(SHIPPED / f"meso4_f2f{suffix}", tmp_path / f"meso{suffix}")
    card = json.loads((tmp_path / "meso.json").read_text())
    card.pop("onnx"), card.pop("model_spec")
    card["weights_file"] = "meso.safetensors"
    (tmp_path / "meso.json").write_text(json.dumps(card))
    return tmp_path / "meso.json"


def _edit_card(path, change) -> None:
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))


def test_export_command_writes_the_file_and_the_card_and_scan_checks_both(meso_copy, faces, capsys):
    from ddtool.scan.detector import load_detector

    before = load_detector(weights=meso_copy)
    assert before.engine == "torch" and "has no ONNX export" in before.note and "export-onnx" in before.note
    code, out, err = run_cli(["weights", "export-onnx", meso_copy], capsys)
    assert code == 0, err
    assert "meso.onnx" in out and "P(fake) within" in out
    card = json.loads(meso_copy.read_text())
    block = card["onnx"]
    assert block["weights_file"] == "meso.onnx" and block["exported_from"] == card["sha256"] and len(block["sha256"]) == 64
    assert block["input"] == {"name": "input", "shape": ["batch", 3, 256, 256]} and block["output"]["shape"] == ["batch", 2]
    assert block["checked"]["max_p_fake_difference"] <= TOLERANCE and card["model_spec"]["name"] == "meso4"
    after = load_detector(weights=meso_copy)
    assert after.engine == "onnxruntime" and after.note is None and after.engine_file.endswith("meso.onnx")
    np.testing.assert_allclose(after.fake_probability(faces), before.fake_probability(faces), rtol=0, atol=TOLERANCE)

    # Weights changed since the export (the card's sha256 is of other weights): torch scores them, and says why.
    _edit_card(meso_copy, lambda c: c["onnx"].update(exported_from="0" * 64))
    stale = load_detector(weights=meso_copy)
    assert stale.engine == "torch" and "made from other weights" in stale.note
    _edit_card(meso_copy, lambda c: c["onnx"].update(exported_from=c["sha256"]))
    # The graph is not the one the card describes: refused, never guessed from the graph.
    _edit_card(meso_copy, lambda c: c["onnx"]["output"].update(name="scores"))
    with pytest.raises(CheckpointError, match="the graph's output is"):
        load_detector(weights=meso_copy)
    _edit_card(meso_copy, lambda c: c["onnx"]["output"].update(name="logits"))
    onnx_file = meso_copy.with_name("meso.onnx")
    onnx_file.write_bytes(onnx_file.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(CheckpointError, match="sha256 does not match its card's onnx block"):
        load_detector(weights=meso_copy)
    onnx_file.unlink()
    assert "is missing" in load_detector(weights=meso_copy).note


def test_export_refuses_a_model_that_does_not_score_faces(tmp_path):
    from ddtool.models.onnx_export import export_onnx

    for name in ("lgbm_noise_offline.json", "lgbm_noise_offline.lgbm.txt"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    with pytest.raises(CheckpointError, match="only image models"):
        export_onnx(tmp_path / "lgbm_noise_offline.json")


def test_onnx_providers_follow_the_device_rule():
    from ddtool.device import onnx_providers

    cpu_only, with_gpu = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("auto", cpu_only) == ["CPUExecutionProvider"]
    assert onnx_providers("auto", with_gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cpu", with_gpu) == ["CPUExecutionProvider"]
    assert onnx_providers("cuda:1", with_gpu) == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert onnx_providers("cuda", cpu_only) is None and onnx_providers("mps", with_gpu) is None  # torch scores there instead
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        onnx_providers("gpu", with_gpu)


def test_a_scan_of_onnx_exports_never_imports_torch(face_video, tmp_path):
    """`ddtool scan` with the shipped panel runs start to end without torch, and so does `import ddtool.cli`; the CLIP
    encoder's block outputs are added on the protobuf wire, so the onnx package (about 1 s to import) stays out too."""
    script = (
        "import runpy, sys\n"
        "import ddtool.cli\n"
        "assert 'torch' not in sys.modules, 'import ddtool.cli imported torch'\n"
        f"sys.argv = ['ddtool', 'scan', {str(face_video)!r}, '--frames', '3', '--json']\n"
        "try:\n"
        "    runpy.run_module('ddtool', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    code = done.code\n"
        "print('torch' in sys.modules, 'onnx' in sys.modules, code, file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DDTOOL_WEIGHTS", None)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    torch_loaded, onnx_loaded, code = run.stderr.strip().splitlines()[-1].split()
    assert torch_loaded == "False" and onnx_loaded == "False", run.stderr
    assert int(code) in (0, 1, 8), run.stderr  # a verdict, not an error
    document = json.loads(run.stdout)
    assert document["inputs"][0]["faces"] == 3
    assert {d["engine"] for d in document["inputs"][0]["detectors"]} == {"onnxruntime"}
    assert document["scan"]["options"]["device"] == "cpu"


def test_weights_check_reports_an_export_that_no_longer_stands_for_its_weights(tmp_path, capsys, monkeypatch):
    for suffix in (".safetensors", ".json", ".onnx"):
        shutil.copy(SHIPPED / f"meso4_f2f{suffix}", tmp_path / f"meso4_f2f{suffix}")
    monkeypatch.setenv("DDTOOL_WEIGHTS", str(tmp_path))
    code, _, err = run_cli(["weights", "--check"], capsys)
    assert code == 0, err
    onnx_file = tmp_path / "meso4_f2f.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    code, _, err = run_cli(["weights", "--check"], capsys)
    assert code == 3 and "sha256 of meso4_f2f.onnx does not match the card's onnx block" in err and "export-onnx meso4_f2f" in err
    _edit_card(tmp_path / "meso4_f2f.json", lambda c: c["onnx"].update(exported_from="0" * 64))
    code, _, err = run_cli(["weights", "--check"], capsys)
    assert code == 3 and "made from other weights" in err
