"""Forgery synthesis: every method changes the face, keeps the background, is seeded."""

import cv2
import numpy as np
import pytest

from ddtool.data.synth import METHODS, _dcgan_generator, blend_mask, load_gan_generator, make_forgery, method_domain
from ddtool.errors import CheckpointError, ConfigError
from ddtool.media.landmarks import landmarks_68


@pytest.fixture(scope="module")
def face(face_image):
    import dlib

    rgb = cv2.cvtColor(cv2.imread(str(face_image)), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (256, 256))
    rect = dlib.get_frontal_face_detector()(rgb, 1)[0]
    box = (rect.left(), rect.top(), rect.right(), rect.bottom())
    return rgb, landmarks_68(rgb, box)


@pytest.fixture(scope="module")
def gan_weights(tmp_path_factory):
    """A randomly initialised generator saved like gan-face-generate's weights.tar (the real one is not in the repo)."""
    import torch

    torch.manual_seed(0)
    state = {f"main.{k}": v for k, v in _dcgan_generator()["main"].state_dict().items()}
    path = tmp_path_factory.mktemp("gan") / "weights.tar"
    torch.save({"netG_state_dict": state}, path)
    return path


@pytest.fixture(autouse=True)
def _gan_weights_env(gan_weights, monkeypatch):
    monkeypatch.setenv("DDTOOL_GAN_FACE_WEIGHTS", str(gan_weights))


def _extra(name, rgb, lm):
    if name != "face_swap":
        return {}
    # A second "identity": the same face mirrored, recoloured.
    donor = cv2.flip(rgb, 1)[..., ::-1].copy()
    donor_lm = lm.copy()
    donor_lm[:, 0] = rgb.shape[1] - 1 - donor_lm[:, 0]
    return {"donor": donor, "donor_landmarks": donor_lm}


def test_landmarks_lie_inside_the_face(face):
    rgb, lm = face
    assert lm.shape == (68, 2)
    assert (lm >= 0).all() and (lm[:, 0] < rgb.shape[1]).all() and (lm[:, 1] < rgb.shape[0]).all()
    # Eyes (36-47) above the mouth (48-67).
    assert lm[36:48, 1].mean() < lm[48:68, 1].mean()


@pytest.mark.parametrize("name", list(METHODS))
def test_method_changes_face_not_background(face, name):
    rgb, lm = face
    forgery = make_forgery(name, rgb, lm, np.random.default_rng(1), 0.7, **_extra(name, rgb, lm))
    assert forgery.image.shape == rgb.shape and forgery.image.dtype == np.uint8
    diff = np.abs(forgery.image.astype(int) - rgb.astype(int)).mean(axis=2)
    inside = forgery.mask > 0.8 * forgery.mask.max()
    outside = blend_mask(rgb.shape[:2], lm, np.random.default_rng(0), blur=0.3) < 0.01
    assert inside.sum() > 500
    assert diff[inside].mean() > 1.0, "the face region must change"
    if name not in ("double_jpeg", "gan_face"):  # both change the whole image by design
        assert diff[outside].mean() < diff[inside].mean() / 3


@pytest.mark.parametrize("name", list(METHODS))
def test_method_is_deterministic_for_a_seed(face, name):
    rgb, lm = face
    a = make_forgery(name, rgb, lm, np.random.default_rng(5), 0.5, **_extra(name, rgb, lm))
    b = make_forgery(name, rgb, lm, np.random.default_rng(5), 0.5, **_extra(name, rgb, lm))
    assert np.array_equal(a.image, b.image)


def test_strength_scales_the_change(face):
    rgb, lm = face
    weak = make_forgery("smooth", rgb, lm, np.random.default_rng(3), 0.1)
    strong = make_forgery("smooth", rgb, lm, np.random.default_rng(3), 1.0)
    d = lambda f: np.abs(f.image.astype(int) - rgb.astype(int)).mean()  # noqa: E731
    assert d(strong) > d(weak)


def test_domains_and_bad_arguments(face):
    rgb, lm = face
    assert [method_domain(n) for n in METHODS] == list(range(1, len(METHODS) + 1))
    with pytest.raises(ConfigError, match="unknown forgery method"):
        make_forgery("nope", rgb, lm, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="strength"):
        make_forgery("smooth", rgb, lm, np.random.default_rng(0), 2.0)
    with pytest.raises(ConfigError, match="68 landmarks"):
        make_forgery("smooth", rgb, lm[:5], np.random.default_rng(0))


def test_gan_face_replaces_the_whole_image_seeded(face, gan_weights):
    rgb, lm = face
    a = make_forgery("gan_face", rgb, lm, np.random.default_rng(1), 0.5, weights=gan_weights)
    b = make_forgery("gan_face", rgb, lm, np.random.default_rng(2), 0.5, weights=gan_weights)
    assert a.image.shape == rgb.shape and (a.mask == 1).all()
    assert not np.array_equal(a.image, b.image)
    # Up-sampled from 64x64: a 64 px round trip loses far less of it than of a real photo.
    def round_trip_loss(img):
        small = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA)
        back = cv2.resize(small, img.shape[1::-1], interpolation=cv2.INTER_CUBIC)
        return np.abs(back.astype(int) - img.astype(int)).mean()

    assert round_trip_loss(a.image) < 0.5 * round_trip_loss(rgb)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_gan_weights_load_safely_or_say_why(tmp_path):
    import pickle

    import torch

    with pytest.raises(ConfigError, match="not found"):
        load_gan_generator(str(tmp_path / "none.tar"))
    wrong = tmp_path / "wrong.tar"
    torch.save({"netG_state_dict": {"main.0.weight": torch.zeros(3, 3)}}, wrong)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_gan_generator(str(wrong))
    hostile = tmp_path / "hostile.tar"
    hostile.write_bytes(pickle.dumps({"netG_state_dict": ValueError("arbitrary object")}))
    with pytest.raises(CheckpointError, match="safely"):
        load_gan_generator(str(hostile))
