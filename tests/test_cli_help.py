"""The second hour's rough edges in the CLI: every default visible in help, plain metavars, one --device default,
usage errors exit 2, `report --runs runs/*`, and Grad-CAM PNGs that say what they show."""

from __future__ import annotations

import json
import re

import cv2
import pytest
import typer

from conftest import FACE_IMAGE, run_cli
from ddtool.cli import app
from test_explain import register_tiny


def _commands():
    """(words, click command) for every command and sub-command of the app (typer vendors click: groups by duck type)."""

    def walk(command, words):
        if hasattr(command, "commands"):
            for name, sub in sorted(command.commands.items()):
                yield from walk(sub, [*words, name])
        else:
            yield words, command

    yield from walk(typer.main.get_command(app), [])


COMMANDS = list(_commands())


def _help(words, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping: a help text reads as one line
    code, out, _ = run_cli([*words, "--help"], capsys)
    assert code == 0
    return " ".join(out.replace("│", " ").split())


@pytest.mark.parametrize("words, command", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_help_shows_every_bracket_and_no_python_types(words, command, capsys, monkeypatch):
    text = _help(words, capsys, monkeypatch)
    assert not re.search(r"list\[|<str>|\{\w+\}", text), text
    for param in command.params:
        help_text = " ".join((getattr(param, "help", None) or "").replace("\\[", "[").split())
        for bracketed in re.findall(r"\[[^\]]+\]", help_text):
            assert bracketed in text, f"{' '.join(words)} {param.name}: {bracketed} was eaten by the help's markup"
    usage = re.search(r"Usage: (.*?) (╭|$)", text).group(1)
    assert usage == usage.replace("{", "") and all((p.metavar or p.name).upper() in usage for p in command.params if p.param_type_name == "argument")


def test_every_device_option_has_the_one_default():
    from ddtool.device import DEFAULT_DEVICE

    defaults = {" ".join(words): p.default for words, command in COMMANDS for p in command.params if p.name == "device"}
    assert {"scan", "explain", "eval", "report", "profile"} <= set(defaults)
    assert {w: d for w, d in defaults.items() if d not in (DEFAULT_DEVICE, None)} == {}  # None: train's layered config, documented as auto


def test_explain_without_arguments_is_a_usage_error(capsys):
    code, _, err = run_cli(["explain"], capsys)
    assert code == 2 and "--afam" in err and "--gradcam" in err


def test_report_takes_a_shell_glob_of_runs(tmp_path, capsys):
    # `--runs runs/*` reaches the command as --runs A B C: every one is a run (the missing one stops it, exit 3, not 2).
    code, _, err = run_cli(["report", "--cross", "celebdf", "--runs", "meso4_df", tmp_path / "missing_run"], capsys)
    assert code == 3 and "missing_run" in err and "unexpected extra argument" not in err
    code, _, err = run_cli(["report", "--cross", "celebdf"], capsys)
    assert code == 2 and "--runs" in err


def test_explain_pngs_carry_model_weights_and_score(tmp_path, capsys):
    from ddtool.models.checkpoint import save_checkpoint
    from test_explain import TinyDetector

    name = register_tiny()
    card = save_checkpoint(TinyDetector(fake_bias=2.0), tmp_path / "tiny_w", name, {})
    code, out, err = run_cli(["explain", "--gradcam", FACE_IMAGE, "--weights", card, "--out", tmp_path / "x", "--json"], capsys)
    assert code == 0, err
    (item,) = json.loads(out)["files"]
    assert item["caption"][0] == f"Grad-CAM of tiny_w (model {name})" and item["caption"][1].startswith("weights tiny_w.safetensors, sha256 ")
    assert re.fullmatch(r"frame 0, face 0: P\(fake\) \d\.\d{3}", item["caption"][2])
    image = cv2.imread(item["file"])
    band = image[-20:]  # the caption band: white with dark text
    assert image.shape[1] == 512 and image.shape[0] > 256 and (band > 240).mean() > 0.5 and (band < 100).any()
