"""Tests for the frozen VGG feature extractor: layer names, truncation, weight loading, freezing."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision

from mcir.errors import CheckpointError, OptionError
from mcir.losses.vgg_features import IMAGENET_MEAN, IMAGENET_STD, VGGFeatureExtractor, vgg_layer_names

# This machine is offline, so most tests use vgg_weights='random' (explicitly requested random init).
pytestmark = pytest.mark.filterwarnings("ignore:.*features are random:UserWarning")


@pytest.fixture(scope="module")
def tv_vgg16(tmp_path_factory: pytest.TempPathFactory):
    """A randomly initialised torchvision vgg16 and its full state_dict saved as a .pth file."""
    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None).eval()
    path = tmp_path_factory.mktemp("vgg") / "vgg16_random.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_layer_names_match_torchvision_layout(tv_vgg16) -> None:
    model, _ = tv_vgg16
    names = vgg_layer_names("vgg16")
    assert len(names) == len(model.features)
    for name, layer in zip(names, model.features):
        kind = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d}[name[:4]]
        assert isinstance(layer, kind), name
    vgg19 = vgg_layer_names("vgg19")
    assert len(vgg19) == 37
    assert {"conv3_4", "relu4_4", "relu5_4"} <= set(vgg19)
    assert "conv3_4" not in names


def test_path_weights_match_torchvision_features(tv_vgg16) -> None:
    model, path = tv_vgg16
    ext = VGGFeatureExtractor(["relu1_2", "conv2_2", "relu3_3"], vgg_weights=path)
    x = torch.rand(2, 3, 24, 24)
    feats = ext(x)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = model.features[:16]((x - mean) / std)
    torch.testing.assert_close(feats["relu3_3"], ref)
    assert feats["relu1_2"].shape == (2, 64, 24, 24)
    # conv2_2 is taken before its ReLU, so it must have negative values.
    assert feats["conv2_2"].min() < 0


def test_features_only_state_dict_loads(tmp_path: Path) -> None:
    torch.manual_seed(1)
    src = VGGFeatureExtractor(["pool5"], vgg_weights="random")
    path = tmp_path / "features_only.pth"
    torch.save(src.features.state_dict(), path)
    ext = VGGFeatureExtractor(["relu2_1"], vgg_weights=str(path))
    torch.testing.assert_close(ext.features[5].weight, src.features[5].weight)


def test_wrong_weights_files_raise(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match="nope.pth"):
        VGGFeatureExtractor(["relu1_2"], vgg_weights=str(missing))

    bad_keys = tmp_path / "bad_keys.pth"
    torch.save({"foo.weight": torch.zeros(3)}, bad_keys)
    with pytest.raises(CheckpointError, match="bad_keys.pth"):
        VGGFeatureExtractor(["relu1_2"], vgg_weights=bad_keys)

    # A VGG19 file must not pass as VGG16 even though their first blocks have the same shapes.
    vgg19 = tmp_path / "vgg19.pth"
    torch.save(VGGFeatureExtractor(["pool5"], vgg_type="vgg19", vgg_weights="random").features.state_dict(), vgg19)
    with pytest.raises(CheckpointError, match="vgg19.pth"):
        VGGFeatureExtractor(["relu1_2"], vgg_type="vgg16", vgg_weights=vgg19)

    not_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_dict)
    with pytest.raises(CheckpointError, match="list.pth"):
        VGGFeatureExtractor(["relu1_2"], vgg_weights=not_dict)


def test_imagenet_offline_raises_checkpoint_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise URLError("offline (test)")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(CheckpointError) as info:
        VGGFeatureExtractor(["relu1_2"], vgg_weights="imagenet")
    msg = str(info.value)
    assert "vgg16-397923af.pth" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg
    assert "\n" not in msg


def test_imagenet_uses_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_download(*args, **kwargs):
        raise AssertionError("must not download when the file is cached")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    torch.manual_seed(2)
    src = VGGFeatureExtractor(["relu2_2"], vgg_weights="random")
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    # Full-stack features, keyed like torchvision ('features.N.weight').
    full = VGGFeatureExtractor(["pool5"], vgg_weights="random").features.state_dict()
    full.update(src.features.state_dict())
    torch.save({f"features.{k}": v for k, v in full.items()}, cache / "vgg16-397923af.pth")
    ext = VGGFeatureExtractor(["relu2_2"], vgg_weights="imagenet")
    torch.testing.assert_close(ext.features[7].weight, src.features[7].weight)


def test_random_weights_warn() -> None:
    with pytest.warns(UserWarning, match="random"):
        VGGFeatureExtractor(["relu1_1"], vgg_weights="random")


def test_unknown_layer_and_type() -> None:
    with pytest.raises(OptionError, match=r"relu3_4.*relu3_3"):
        VGGFeatureExtractor(["relu3_4"], vgg_type="vgg16", vgg_weights="random")
    with pytest.raises(OptionError, match="vgg_type"):
        VGGFeatureExtractor(["relu1_1"], vgg_type="vgg11", vgg_weights="random")
    with pytest.raises(OptionError):
        VGGFeatureExtractor([], vgg_weights="random")


def test_truncated_and_single_pass() -> None:
    ext = VGGFeatureExtractor(["relu2_2", "relu1_2"], vgg_weights="random")
    assert len(ext.features) == vgg_layer_names("vgg16").index("relu2_2") + 1
    calls = []
    for layer in ext.features:
        layer.register_forward_hook(lambda mod, inp, out: calls.append(mod))
    feats = ext(torch.rand(1, 3, 16, 16))
    assert len(calls) == len(ext.features)
    assert set(feats) == {"relu1_2", "relu2_2"}
    assert feats["relu2_2"].shape == (1, 128, 8, 8)


def test_frozen_eval_and_input_grad() -> None:
    ext = VGGFeatureExtractor(["relu1_2", "relu2_2"], vgg_weights="random")
    ext.train()
    assert not ext.training and not any(m.training for m in ext.modules())
    assert not any(p.requires_grad for p in ext.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    sum(f.sum() for f in ext(x).values()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in ext.parameters())
    assert not ext.state_dict().keys() & {"mean", "std"}


def test_range_norm() -> None:
    torch.manual_seed(3)
    plain = VGGFeatureExtractor(["relu2_1"], vgg_weights="random")
    ranged = VGGFeatureExtractor(["relu2_1"], range_norm=True, vgg_weights="random")
    ranged.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(ranged(x * 2 - 1)["relu2_1"], plain(x)["relu2_1"], rtol=1e-5, atol=1e-5)


def test_vgg19_layers() -> None:
    ext = VGGFeatureExtractor(["conv3_4", "relu5_4"], vgg_type="vgg19", vgg_weights="random")
    assert len(ext.features) == vgg_layer_names("vgg19").index("relu5_4") + 1
    feats = ext(torch.rand(1, 3, 32, 32))
    assert feats["conv3_4"].shape == (1, 256, 8, 8)
    assert feats["relu5_4"].shape == (1, 512, 2, 2)
