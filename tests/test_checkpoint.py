"""Checkpoints: safe format, sha256 check, hostile and mismatching files, atomic writes."""

import json
import os
import pickle
import stat

import pytest
import torch
import torch.nn as nn

from ddtool.errors import CheckpointError
from ddtool.io import write_text_atomic
from ddtool.models.registry import ModelSpec, register_model
from ddtool.models.checkpoint import load_checkpoint, read_card, save_checkpoint, sha256_file

NAME = "tiny_ckpt_probe"


class Probe(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.fc = nn.Linear(3, width)
        self.head = nn.Linear(width, 2)

    def forward(self, x):
        return self.head(self.fc(x))


@pytest.fixture(autouse=True)
def probe_model() -> str:
    register_model(ModelSpec(NAME, Probe, "checkpoint test probe", "test", input_size=3))
    return NAME


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = Probe(width=5)
    card = save_checkpoint(model, tmp_path / "best", NAME, {"width": 5}, metrics={"val_auc": 0.9})
    return model, card


def test_round_trip_restores_weights_and_card(saved):
    model, card_path = saved
    loaded, card = load_checkpoint(card_path)
    assert card["model"] == NAME and card["metrics"] == {"val_auc": 0.9}
    assert card["sha256"] == sha256_file(card_path.with_name(card["weights_file"]))
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert not loaded.training, "a loaded checkpoint is ready for inference"


def test_tampered_weights_fail_the_sha256_check(saved):
    _, card_path = saved
    weights = card_path.with_name(read_card(card_path)["weights_file"])
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(card_path)


def test_pickle_disguised_as_safetensors_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    weights = tmp_path / "evil.safetensors"
    weights.write_bytes(pickle.dumps(Exploit()))
    card = {"model": NAME, "weights_file": weights.name, "model_kwargs": {}}
    (tmp_path / "evil.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(tmp_path / "evil.json")
    assert not marker.exists()


@pytest.mark.parametrize(
    "card, message",
    [
        ({"model": NAME, "weights_file": "../../etc/passwd"}, "file name beside the card"),
        ({"model": "no_such_model", "weights_file": "best.safetensors"}, "unknown model"),
        ({"model": NAME, "weights_file": "best.safetensors", "model_kwargs": {"width": 9}}, "does not fit"),
        ({"model": NAME, "weights_file": "best.safetensors", "model_kwargs": {"colour": 1}}, "model_kwargs"),
        ({"weights_file": "best.safetensors"}, "lacks"),
    ],
)
def test_bad_cards_are_one_line_errors(saved, card, message):
    _, card_path = saved
    card_path.write_text(json.dumps({**card, "sha256": None}))
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(card_path)
    assert "\n" not in str(info.value)


def test_missing_and_corrupt_cards(tmp_path):
    with pytest.raises(CheckpointError, match="neither the weights file nor its card"):
        load_checkpoint(tmp_path / "nothing.safetensors")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "x.json")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    write_text_atomic(target, "old")
    assert stat.S_IMODE(os.stat(target).st_mode) & 0o044, "files must not be private"

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(target), "write_text", boom)
    with pytest.raises(OSError):
        write_text_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"], "no temp file left behind"


def test_cards_store_no_absolute_paths(tmp_path):
    """A card travels with its weights: nearby paths become relative to its folder, far ones a two-part label."""
    import json

    from ddtool.models.checkpoint import portable_path, save_checkpoint, strip_machine_paths

    run = tmp_path / "runs" / "m" / "intra"
    cache = tmp_path / "cache"
    card = save_checkpoint(
        torch.nn.Linear(2, 2), run / "best", "linear", {},
        config={"data": str(cache), "out": str(run)},
        training_data={"cache": str(cache), "summary": f"faces from face cache {cache}"},
        training_command=f"ddtool train --data {cache} --out /srv/box/home/me/runs/x",
    )
    stored = json.loads(card.read_text())
    assert stored["config"] == {"data": "../../../cache", "out": "."}
    assert stored["training_data"]["summary"] == "faces from face cache ../../../cache"
    assert stored["training_command"] == "ddtool train --data ../../../cache --out runs/x"
    assert portable_path("/srv/box/home/me/cache") == "me/cache"
    assert strip_machine_paths({"a": ["1/2 and/or https://x.org/a/b", 3]}) == {"a": ["1/2 and/or https://x.org/a/b", 3]}
