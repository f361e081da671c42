"""The diagnostic probe scripts under probes/ still run against the package."""

import importlib.util
from pathlib import Path

import torch

PROBES = Path(__file__).resolve().parents[1] / "probes"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, PROBES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_factor_targets_encode_angles_and_shapes():
    probe = _load("pretrained_encoder")
    values = torch.tensor([[2.0, 0.25, 0.5]], dtype=torch.float64)
    targets, labels = probe.factor_targets(values, ("shape", "hue", "x"))
    assert labels == ["shape0", "shape1", "shape2", "hue_cos", "hue_sin", "x"]
    assert torch.allclose(targets, torch.tensor([[0.0, 0.0, 1.0, 0.0, 1.0, 0.5]]), atol=1e-6)


def test_pretrained_encoder_probe_trains_a_vae_from_the_readout_convs(tmp_path, capsys, monkeypatch):
    probe = _load("pretrained_encoder")
    readout, seen = probe.train_readout, {}
    real_train = probe.training.train

    def keep_readout(*args, **kwargs):
        seen["convs"] = readout(*args, **kwargs)
        return seen["convs"]

    def check_then_train(config, *args, **kwargs):
        built = probe.training.build_vae(config.model, 32, 3)  # what the Trainer will call
        for name, weight in built.encoder.convs.state_dict().items():
            assert torch.equal(weight, seen["convs"][name])
        return real_train(config, *args, **kwargs)

    monkeypatch.setattr(probe, "train_readout", keep_readout)
    monkeypatch.setattr(probe.training, "train", check_then_train)
    monkeypatch.setattr(probe.training, "build_vae", probe.build_vae)  # undone after the test
    probe.main([str(tmp_path / "run"), "--readout-steps", "20", "--steps", "10"])
    out = capsys.readouterr().out
    assert "hue_cos" in out and "validation squared error" in out
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_pretrained_encoder_probe_refuses_a_used_folder_and_keeps_it(tmp_path, capsys):
    probe = _load("pretrained_encoder")
    used = tmp_path / "run"
    used.mkdir()
    (used / "keep.txt").write_text("earlier work")
    try:
        probe.main([str(used), "--readout-steps", "20", "--steps", "10"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("a used folder was accepted")
    assert "already exists" in capsys.readouterr().err
    assert (used / "keep.txt").read_text() == "earlier work"
