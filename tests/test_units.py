"""Counting the decoder channels that still fire (the dead-ReLU diagnostic of reproduce)."""

from __future__ import annotations

import json
import shutil

import torch

from sbvae.evaluation.live_units import live_channels, unit_statistics
from sbvae.models import DeconvDecoder, SpatialBroadcastDecoder


def test_live_channels_counts_each_relu_of_either_decoder():
    torch.manual_seed(0)
    z = torch.randn(64, 10)
    sbd = SpatialBroadcastDecoder(image_size=32, latent_dim=10, layers=2, width=16, broadcast="same")
    assert live_channels(sbd, z) == [(16, 16), (16, 16)]  # a fresh decoder: every channel fires
    last_hidden = sbd.convs[2]
    with torch.no_grad():
        last_hidden.bias.fill_(-1e3)  # pushed far negative: never fires on anything
        last_hidden.bias[:5] = 1e3  # these five always do
    assert live_channels(sbd, z) == [(16, 16), (5, 16)]
    deconv = DeconvDecoder(image_size=32, latent_dim=10, width=8)
    assert [total for _, total in live_channels(deconv, z)] == [8 * 2 * 2, 8, 8, 8]  # fc, then deconvs


def test_unit_statistics_are_cached_and_need_no_checkpoint_afterwards(tmp_path, trained_run):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    stats = unit_statistics(run, torch.device("cpu"))
    layers = stats["layers"]
    assert len(layers) == 2 and all(total == 16 and 0 <= live <= 16 for live, total in layers)
    assert stats["last_hidden_live"] == layers[-1][0] / 16
    assert json.loads((run / "units.json").read_text())["layers"] == layers
    for garbage in ("{not json", "[1, 2]"):  # an unreadable cache is counted again and rewritten
        (run / "units.json").write_text(garbage)
        assert unit_statistics(run, torch.device("cpu"))["layers"] == layers
        assert json.loads((run / "units.json").read_text())["layers"] == layers
    (run / "checkpoint.pt").unlink()
    assert unit_statistics(run, torch.device("cpu"))["layers"] == layers  # from units.json
    (run / "units.json").unlink()
    assert unit_statistics(run, torch.device("cpu")) is None  # neither: nothing to count
