"""`ddtool weights import`: the Keras MesoNet converter (on the authors' files and on a file the test writes)
and plain state dicts, with their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ddtool.errors import CheckpointError, ConfigError
from ddtool.models import create_model
from ddtool.models.checkpoint import load_checkpoint
from ddtool.weights_import import KERAS_BN_EPSILON, build_keras_mesonet, import_weights

h5py = pytest.importorskip("h5py")
MESONET = Path(__file__).resolve().parents[2] / "shared" / "third_party" / "mesonet"
TEST_IMAGES = ["df/df00204.jpg", "df/df01254.jpg", "real/real00240.jpg", "real/real00772.jpg"]
# The README's Keras outputs, P(real), on the four test images resized to 256 nearest.
KERAS_P_REAL = {
    ("Meso4_DF.h5", "meso4"): [0.030, 0.028, 0.990, 0.998],
    ("MesoInception_DF.h5", "mesoinception4"): [0.023, 0.002, 1.000, 1.000],
    ("Meso4_F2F.h5", "meso4"): [0.822, 0.768, 0.881, 0.958],
    ("MesoInception_F2F.h5", "mesoinception4"): [0.981, 1.000, 1.000, 0.999],
}


def _test_batch() -> torch.Tensor:
    import cv2

    images = []
    for name in TEST_IMAGES:
        rgb = cv2.cvtColor(cv2.imread(str(MESONET / "test_images" / name)), cv2.COLOR_BGR2RGB)
        images.append(cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_NEAREST))
    return torch.from_numpy(np.stack(images).astype(np.float32) / 255.0).permute(0, 3, 1, 2)


@pytest.mark.skipif(not (MESONET / "weights").is_dir(), reason="needs ../shared/third_party/mesonet")
@pytest.mark.parametrize("source,model", list(KERAS_P_REAL))
def test_converted_authors_models_reproduce_their_keras_outputs(source, model):
    net, kwargs = build_keras_mesonet(MESONET / "weights" / source, model)
    assert kwargs == {"variant": "keras", "input_size": 256}
    with torch.no_grad():
        p_fake = torch.softmax(net(_test_batch()), dim=1)[:, 1].numpy()
    # README values are rounded to 3 decimals: within 1e-3 plus the rounding.
    np.testing.assert_allclose(1.0 - p_fake, KERAS_P_REAL[(source, model)], atol=1e-3 + 5e-4)


# ----------------------------------------------------------------- a Keras-layout file written here


def _export_keras_layout(model: torch.nn.Module, path: Path, inception: bool, first_suffix: int = 5) -> None:
    """Write `model` (keras variant, read as P(real) = sigmoid(z), BN epsilon 1e-3) as a Keras 2.1 HDF5 file."""
    from ddtool.weights_import import _conv_names

    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    with h5py.File(path, "w") as fh:
        def put(group: str, **tensors):
            for key, value in tensors.items():
                fh.create_dataset(f"{group}/{group}/{key}:0", data=value)

        for i, name in enumerate(_conv_names(model, inception)):
            put(f"conv2d_{first_suffix + i}", kernel=state[f"{name}.weight"].transpose(2, 3, 1, 0), bias=state[f"{name}.bias"])
        for i in range(4):
            put(f"batch_normalization_{first_suffix + i}", gamma=state[f"norms.{i}.weight"], beta=state[f"norms.{i}.bias"],
                moving_mean=state[f"norms.{i}.running_mean"], moving_variance=state[f"norms.{i}.running_var"])
        weight = state["head.2.weight"]  # (16, c*h*w) in torch order -> Keras rows in (h, w, c) order
        side = int(round((weight.shape[1] / 16) ** 0.5))
        kernel = weight.T.reshape(16, side, side, -1).transpose(1, 2, 0, 3).reshape(weight.shape[1], -1)
        put(f"dense_{first_suffix}", kernel=kernel, bias=state["head.2.bias"])
        put(f"dense_{first_suffix + 1}", kernel=state["head.5.weight"].T, bias=state["head.5.bias"])


@pytest.mark.parametrize("model_name", ["meso4", "mesoinception4"])
def test_converter_on_a_keras_layout_file_the_test_writes(tmp_path, model_name):
    torch.manual_seed(3)
    keras = create_model(model_name, variant="keras", input_size=64).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so the epsilon and the channel order matter
        for norm in keras.norms:
            norm.running_mean.uniform_(-0.2, 0.2)
            norm.running_var.uniform_(1e-3, 4e-3)
            norm.weight.uniform_(0.5, 1.5)
    path = tmp_path / "tiny.h5"
    _export_keras_layout(keras, path, inception=model_name == "mesoinception4")
    for norm in keras.norms:  # the Keras model this file describes divides by sqrt(var + 1e-3)
        norm.eps = KERAS_BN_EPSILON
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        p_real = torch.sigmoid(keras.head(keras.forward_features(x)))[:, 0]

    from ddtool.weights_import import keras_mesonet_state, read_keras_layers

    converted = create_model(model_name, variant="keras", input_size=64).eval()
    converted.load_state_dict(keras_mesonet_state(read_keras_layers(path), converted, model_name == "mesoinception4"))
    with torch.no_grad():
        p_fake = torch.softmax(converted(x), dim=1)[:, 1]
    torch.testing.assert_close(p_fake, 1.0 - p_real, atol=1e-5, rtol=0)


def test_import_writes_a_loadable_checkpoint_with_origin(tmp_path):
    torch.manual_seed(0)
    keras = create_model("meso4", variant="keras", input_size=256).eval()
    path = tmp_path / "Meso4_X.h5"
    _export_keras_layout(keras, path, inception=False)
    card_path = import_weights(path, tmp_path / "out" / "meso4_x", "meso4", card_fields={"origin": {"repository": "somebody/mesonet"}})
    model, card = load_checkpoint(card_path)
    assert card["model_kwargs"] == {"variant": "keras", "input_size": 256}
    assert card["origin"]["repository"] == "somebody/mesonet" and card["origin"]["format"] == "keras-mesonet"
    assert len(card["origin"]["source_sha256"]) == 64 and card["params"] == 27_977
    assert card["input"]["size"] == 256


def test_keras_file_of_the_other_model_is_refused(tmp_path):
    keras = create_model("meso4", variant="keras", input_size=256)
    path = tmp_path / "meso4.h5"
    _export_keras_layout(keras, path, inception=False)
    with pytest.raises(CheckpointError, match="pass the matching --model"):
        import_weights(path, tmp_path / "x", "mesoinception4")


# ----------------------------------------------------------------- plain state dicts


def test_state_dict_import_round_trips(tmp_path):
    torch.manual_seed(1)
    source = create_model("meso4").eval()
    torch.save({"module." + k: v for k, v in source.state_dict().items()}, tmp_path / "theirs.pt")  # a DataParallel save
    card_path = import_weights(tmp_path / "theirs.pt", tmp_path / "ours", "meso4")
    model, card = load_checkpoint(card_path)
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source(x))
    assert card["origin"]["format"] == "state-dict"


def test_state_dict_errors_list_keys_and_shapes(tmp_path):
    state = create_model("meso4").state_dict()
    broken = {k: v for k, v in state.items() if not k.startswith("layer1.")}
    broken["extra.weight"] = torch.zeros(1)
    broken["head.5.weight"] = torch.zeros(3, 16)
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError) as info:
        import_weights(tmp_path / "broken.pt", tmp_path / "x", "meso4")
    message = str(info.value)
    assert "missing keys: layer1.0.bias" in message or "missing keys: layer1.0.weight" in message
    assert "unexpected keys: extra.weight" in message and "head.5.weight (3, 16) vs (2, 16)" in message
    assert "\n" not in message


class _NotATensorDict:
    pass


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"model": _NotATensorDict()}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="refused, not a plain state dict"):
        import_weights(tmp_path / "pickled.pt", tmp_path / "x", "meso4")


def test_bad_arguments_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        import_weights(tmp_path / "missing.h5", tmp_path / "x", "meso4")
    (tmp_path / "w.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="not a registered model"):
        import_weights(tmp_path / "w.pt", tmp_path / "x", "no_such_model")
    with pytest.raises(ConfigError, match="--format"):
        import_weights(tmp_path / "w.pt", tmp_path / "x", "meso4", fmt="onnx")


def test_cli_import_error_is_one_line(tmp_path, capsys):
    from ddtool.cli.app import main

    torch.save({"model": _NotATensorDict()}, tmp_path / "pickled.pt")
    with pytest.raises(SystemExit) as info:
        main(["weights", "import", str(tmp_path / "pickled.pt"), "--model", "meso4", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert info.value.code == 3 and "refused" in err and "Traceback" not in err
