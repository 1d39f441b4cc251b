"""`ddtool models` and `ddtool profile`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ddtool.cli import app, main
from ddtool.models import list_models

runner = CliRunner()


def test_models_json_lists_every_registered_model():
    result = runner.invoke(app, ["models", "--json", "--no-macs"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == set(list_models())
    assert rows["resnet26"]["params"] == 13_950_274
    assert rows["resnet26"]["paper_params"] == 13_950_000
    assert rows["resnet26"]["macs"] is None


def test_models_table_shows_macs_beside_paper():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "sfic_mobilenet" in result.stdout
    assert "3.06G" in result.stdout and "3.08G" in result.stdout  # resnet26: ours and Table III


def test_profile_json_reports_speed():
    result = runner.invoke(app, ["profile", "--model", "mobilenet", "--size", "32", "--batch", "2", "--runs", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["params"] == 3_209_026
    assert report["input_shape"] == [3, 32, 32] and report["batch"] == 2
    assert report["images_per_s"] > 0


@pytest.mark.parametrize(
    "args,needle",
    [
        (["profile", "--model", "no_such_model"], "unknown model"),
        (["profile", "--model", "resnet26", "--device", "tpu"], "unknown device"),
        (["profile", "--model", "resnet26", "--amp"], "--amp needs --device cuda"),
    ],
)
def test_profile_errors_are_one_line_exit_3(args, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 3
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_profile_cuda_without_gpu_is_a_clear_error(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        main(["profile", "--model", "resnet26", "--device", "cuda"])
    assert exc.value.code == 3
    assert "no GPU" in capsys.readouterr().err
