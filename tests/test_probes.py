"""The diagnostic probe scripts under probes/ still run against the package."""

import importlib.util
import json
from pathlib import Path

import pytest
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


def _sprite_readings():
    from sbvae.config import load_config
    from sbvae.data import build_dataset
    from sbvae.evaluation.probe import Probe, factor_readings

    data = build_dataset(load_config("default", ["data.image_size=32"]).data)
    readings = factor_readings(data)
    return data, Probe(readings, torch.nn.Identity())


def test_latent_readout_reads_factors_from_codes_that_hold_them_and_nothing_from_noise():
    from sbvae.data import make_generator
    from sbvae.evaluation.fidelity import chance, score

    readout = _load("latent_readout")
    data, probe = _sprite_readings()
    values = data.draw(1200, make_generator(0, "test"))
    # Codes that hold every factor: each reading's own target (a class as its index).
    held = torch.cat([r.target(values).float().reshape(len(values), -1) for r in probe.readings], dim=1)
    noise = torch.randn(held.shape, generator=torch.Generator().manual_seed(0))
    train, test = slice(0, 1000), slice(1000, None)
    for codes, near_truth in ((held, True), (noise, False)):
        outputs = probe.split(readout.read_latents(probe, codes[train], values[train], codes[test], steps=400))
        for reading, output in zip(probe.readings, outputs):
            got = score(reading, output, values[test])
            if near_truth:
                assert got > 0.9, (reading.name, got)
            else:
                assert got < chance(reading, values[test]) + 0.15, (reading.name, got)


def test_latent_readout_reports_every_factor_of_a_run(trained_run, capsys):
    readout = _load("latent_readout")
    readout.main([str(trained_run), "--train", "100", "--test", "50", "--steps", "20"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{trained_run} (step 6)")
    data, _ = _sprite_readings()  # the tiny run's data: the default preset's
    factors = len(data.factor_names)
    assert [line.split()[0] for line in lines[1 : 1 + factors]] == list(data.factor_names)
    for line in lines[1 : 1 + factors]:
        latent, recon, control = (float(v) for v in line.split()[1:])
        assert -5 < latent <= 1 and recon <= 1 and control <= 1
    assert lines[1 + factors].strip().startswith("orientation as seen, by shape")
    assert [line.split()[0] for line in lines[2 + factors :]] == ["square", "ellipse", "heart"]


def test_orientation_as_seen_is_read_from_codes_that_hold_it_and_not_from_noise():
    from sbvae.data import make_generator
    from sbvae.data.sprites import angle_as_seen

    readout = _load("latent_readout")
    data, _ = _sprite_readings()
    names = list(data.factor_names)
    values = data.draw(1500, make_generator(0, "test"))
    seen = angle_as_seen(values[:, names.index("shape")].long(), values[:, names.index("orientation")])
    noise = torch.randn(len(values), 4, generator=torch.Generator().manual_seed(0))
    held = readout.orientation_as_seen(data, torch.cat([seen, noise], dim=1), values, 1200, steps=600)
    lost = readout.orientation_as_seen(data, noise, values, 1200, steps=600)
    for shape in ("square", "ellipse", "heart"):
        assert held[shape][0] > 0.9 and lost[shape][0] < 0.1, (shape, held[shape], lost[shape])
        assert held[shape][1] == lost[shape][1]  # the control reads the true factors, not the codes


def test_angle_as_seen_is_the_same_for_a_square_turned_by_a_quarter():
    from sbvae.data.sprites import angle_as_seen

    quarter = torch.tensor([0.3, 0.3 + torch.pi / 2, 0.3 + torch.pi])
    square, ellipse = angle_as_seen(torch.zeros(3), quarter), angle_as_seen(torch.ones(3), quarter)
    assert torch.allclose(square[0], square[1], atol=1e-6) and torch.allclose(square[0], square[2], atol=1e-6)
    assert not torch.allclose(ellipse[0], ellipse[1], atol=1e-3) and torch.allclose(ellipse[0], ellipse[2], atol=1e-6)


def _refused_in_one_line(argv: list[str], capsys) -> str:
    readout = _load("latent_readout")
    with pytest.raises(SystemExit) as exit_info:
        readout.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    return err


def test_latent_readout_refuses_a_folder_without_a_run(tmp_path, capsys):
    _refused_in_one_line([str(tmp_path)], capsys)


@pytest.mark.parametrize("option", ["--train", "--test", "--steps"])
def test_latent_readout_refuses_sample_or_step_counts_under_two(option, trained_run, capsys):
    assert "at least 2" in _refused_in_one_line([str(trained_run), option, "1"], capsys)


def test_the_oracle_latent_holds_each_factor_as_the_probe_reads_it():
    from sbvae.data import make_generator
    from sbvae.evaluation.probe import outputs_width

    oracle = _load("decoder_from_factors")
    data, probe = _sprite_readings()
    values = data.draw(500, make_generator(0, "test"))
    latent = oracle.oracle_latent(probe.readings, values)
    assert latent.shape == (500, outputs_width(probe.readings))
    columns = iter(latent.split([r.width for r in probe.readings], dim=1))
    for reading, part in zip(probe.readings, columns):
        if reading.kind == "class":
            assert torch.equal(part.sum(1), torch.ones(500)) and torch.equal(part.argmax(1), reading.target(values))
        elif reading.kind == "angle":
            assert torch.allclose(part.pow(2).sum(1), torch.ones(500), atol=1e-5)
        else:
            assert part.min() >= -1 and part.max() <= 1 and part.std() > 0.2, reading.name


def test_decoder_from_factors_trains_the_decoder_and_writes_its_curve_and_picture(tmp_path, capsys):
    oracle = _load("decoder_from_factors")
    out = tmp_path / "oracle"
    argv = ["--steps", "40", "--every", "20", "--samples", "300", "--set", "train.lr_warmup=10", "train.threads=1"]
    oracle.main([str(out), *argv])
    rows = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [20, 40]
    assert rows[1]["sse"] < rows[0]["sse"]  # the decoder learns from the true factors
    assert 0 <= rows[1]["fidelity_shape"] <= 1 and "fidelity_shape_control" in rows[1]
    assert (out / "shapes.png").stat().st_size > 0
    assert "step 40: sse" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--every", "0"], ["--samples", "0"]])
def test_decoder_from_factors_refuses_counts_under_one(argv, tmp_path, capsys):
    oracle = _load("decoder_from_factors")
    with pytest.raises(SystemExit) as exit_info:
        oracle.main([str(tmp_path / "new"), *argv])
    assert exit_info.value.code == 2 and "at least 1" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_decoder_from_factors_refuses_a_used_folder_and_keeps_it(tmp_path, capsys):
    oracle = _load("decoder_from_factors")
    (tmp_path / "keep.txt").write_text("earlier work")
    with pytest.raises(SystemExit) as exit_info:
        oracle.main([str(tmp_path), "--steps", "5"])
    assert exit_info.value.code == 2 and "already exists" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "earlier work"


def test_the_oracle_latent_as_seen_gives_a_sprite_the_angle_its_picture_shows():
    oracle = _load("decoder_from_factors")
    data, probe = _sprite_readings()
    names = list(data.factor_names)
    quarter = 2 * torch.pi / 4
    rows = []
    for shape in (0, 0, 1, 1, 2, 2):  # square, ellipse, heart, each unturned and a quarter turn
        row = torch.tensor([data.factor(name).centre for name in names], dtype=torch.float64)
        row[names.index("shape")] = shape
        row[names.index("orientation")] = quarter * (len(rows) % 2)
        rows.append(row)
    values = torch.stack(rows)
    seen = oracle.oracle_latent(probe.readings, values, as_seen=True)
    plain = oracle.oracle_latent(probe.readings, values)
    assert torch.allclose(seen[0], seen[1], atol=1e-6)  # a square turned by a quarter looks the same
    assert not torch.allclose(seen[2], seen[3], atol=1e-3)  # an ellipse does not, nor a heart
    assert not torch.allclose(seen[4], seen[5], atol=1e-3)
    assert not torch.allclose(plain[0], plain[1], atol=1e-3)


def test_decoder_from_factors_refuses_orientation_as_seen_without_sprites(tmp_path, capsys):
    oracle = _load("decoder_from_factors")
    with pytest.raises(SystemExit) as exit_info:
        oracle.main([str(tmp_path / "new"), "--orientation-as-seen", "--set", "data.preset=objects_room"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "for sprites" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()


def test_the_oracle_latent_without_a_factor_drops_only_its_columns():
    from sbvae.data import make_generator

    oracle = _load("decoder_from_factors")
    data, probe = _sprite_readings()
    values = data.draw(50, make_generator(0, "test"))
    full = oracle.oracle_latent(probe.readings, values)
    widths = {r.name: r.width for r in probe.readings}
    start = sum(w for name, w in widths.items() if list(widths).index(name) < list(widths).index("orientation"))
    kept = torch.cat([full[:, :start], full[:, start + widths["orientation"] :]], dim=1)
    dropped = oracle.oracle_latent(probe.readings, values, without=frozenset({"orientation"}))
    assert torch.equal(dropped, kept)


def test_decoder_from_factors_refuses_an_unknown_factor_in_one_line(tmp_path, capsys):
    oracle = _load("decoder_from_factors")
    with pytest.raises(SystemExit) as exit_info:
        oracle.main([str(tmp_path / "new"), "--without", "colour", "--steps", "5"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no factor colour" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()


def test_encoder_orientation_trains_the_encoder_and_prints_r2_by_shape(capsys):
    probe = _load("encoder_orientation")
    probe.main(["--steps", "4", "--every", "2", "--batch", "8", "--set", "train.threads=1"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["step 2", "step 4"]
    for line in lines:
        parts = line.split(": ")[1].split(" | ")
        assert [part.split()[0] for part in parts] == ["square", "ellipse", "heart"]
        assert all(float(part.split()[1]) <= 1 for part in parts)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "data.preset=objects_room"], "no sprite shape"),
        (["--steps", "0"], "at least 1"),
        (["--lr", "0"], "above 0"),
    ],
)
def test_encoder_orientation_refuses_bad_input_in_one_line(argv, message, capsys):
    probe = _load("encoder_orientation")
    with pytest.raises(SystemExit) as exit_info:
        probe.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
