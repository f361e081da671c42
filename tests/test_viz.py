"""Figures, `sbvae visualize`, `sbvae report` and `sbvae compare`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import snapshot
from sbvae.data import make_dataset
from sbvae.evaluation.sampling import encode_means
from sbvae.viz.animation import traversal_frames, traversal_gif
from sbvae.viz.curves import settled_range
from sbvae.viz.geometry import choose_latents, factor_plane, geometry_panel

DATA = make_dataset("colored_sprites", 32)


class CentreOfMassEncoder(torch.nn.Module):
    """Codes that are known functions of the sprite's position: z = (noise, 2y+1, noise, exp(x)).

    The position is the intensity-weighted centre of the image; the "noise" is a deterministic,
    position-independent scramble of the image's total brightness.
    """

    latent_dim = 4

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weight = images.sum(1)  # [N, H, W]
        total = weight.sum((1, 2))
        grid = torch.linspace(0, 1, images.shape[-1])
        x = (weight.sum(1) * grid).sum(1) / total
        y = (weight.sum(2) * grid).sum(1) / total
        noise = torch.sin(total * 1234.5)
        codes = torch.stack([noise, 2 * y + 1, torch.cos(total * 987.6), torch.exp(x)], 1)
        return codes, torch.zeros_like(codes)


class RenderingModel(torch.nn.Module):
    """A 'VAE' whose decoder draws a sprite at x = sigmoid(z3), y = sigmoid(z1); z0, z2 unused."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = CentreOfMassEncoder()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the model a device

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        values = DATA.centre_values(len(z))
        values[:, DATA.factor_names.index("x")] = torch.sigmoid(z[:, 3].double())
        values[:, DATA.factor_names.index("y")] = torch.sigmoid(z[:, 1].double())
        return DATA.render(values)


def test_geometry_picks_the_latents_that_carry_the_factors():
    model = RenderingModel()
    plane = factor_plane(DATA, ("x", "y"), lines=5, points=16)
    panel = geometry_panel("synthetic", model, DATA, plane)
    assert panel.dims == (3, 1)  # exp(x) is z3, 2y+1 is z1
    assert min(panel.mi) > 0.9
    encoded = encode_means(model, DATA, plane.values)
    np.testing.assert_array_equal(panel.points, encoded[..., [3, 1]])  # plotted = encoded means
    # the lines lie where the factors put them: constant-x lines have constant z3
    x_lines = panel.points[: plane.first_lines]
    assert np.ptp(x_lines[..., 0], axis=1).max() < 0.05 and np.ptp(x_lines[..., 1], axis=1).min() > 1.0


def test_geometry_asks_for_the_other_factor_in_the_same_order():
    plane = factor_plane(DATA, ("y", "x"), lines=5, points=16)
    panel = geometry_panel("synthetic", RenderingModel(), DATA, plane)
    assert panel.dims == (1, 3)
    assert plane.plane[0, :, 0].std() == 0 and plane.plane[0, :, 1].std() > 0  # first lines: y fixed


def test_plane_points_outside_the_training_data_are_marked():
    assert factor_plane(DATA, ("x", "y")).inside.all()
    heldout = factor_plane(make_dataset("colored_sprites_heldout", 32), ("x", "y"))
    x, y = heldout.plane[..., 0], heldout.plane[..., 1]
    np.testing.assert_array_equal(heldout.inside, ~((x >= 0.6) & (y >= 0.6)))  # the held-out block
    dependent = make_dataset("dependent_sprites", 32)
    plane = factor_plane(dependent, ("x", "y"))
    hue = plane.values[..., dependent.factor_names.index("hue")].numpy()
    x, y = plane.plane[..., 0], plane.plane[..., 1]
    np.testing.assert_array_equal(plane.inside, (x - 0.5) ** 2 + (y - 0.5) ** 2 <= 0.25 + 1e-9)  # the disc
    assert plane.moved == ("hue",)  # hue follows x inside the disc, as in the data, as near 0.5 as allowed
    assert np.abs(hue - np.clip(0.5, x - 0.15, x + 0.15))[plane.inside].max() < 1 / 64
    assert (hue[np.abs(x - 0.5) < 0.1] == 0.5).all()


def test_one_latent_for_both_factors_gives_the_second_its_next_best():
    a, b = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    labels = np.stack([a.ravel(), b.ravel()], 1)
    codes = np.stack([labels[:, 0] * 16 + labels[:, 1], labels[:, 1], np.zeros(256) + 0.5 * (labels[:, 0] % 2)], 1)
    dims, mi = choose_latents(codes.astype(np.float32), labels)
    assert dims[0] == 0 and dims[1] == 1 and mi[1] == pytest.approx(1.0)


def test_traversal_frames_move_the_right_rows_in_kl_order():
    model = RenderingModel()
    images = DATA.render(DATA.factors.sample(3, torch.Generator().manual_seed(0)))
    kl = torch.tensor([0.01, 2.0, 0.02, 5.0])  # z3 then z1 carry information
    grids, order, _offsets = traversal_frames(model, images, kl, "gaussian", span=2.0, frames=12)
    assert order == [3, 1, 2, 0]
    # the sprite's own colour (value 0.75), not grey
    assert grids.min() >= 0 and grids.max() <= 1 and grids.max() >= 0.74
    assert all((grids[t] - grids[t + 1]).abs().max() > 0.1 for t in range(len(grids) - 1))
    height = (grids.shape[2] - 1) // 4  # each row of tiles is (H + 1) pixels tall
    for r, moving in enumerate([True, True, False, False]):  # rows of z3, z1 move; z2, z0 do not
        band = grids[:, :, 1 + r * height : (r + 1) * height]
        assert ((band - band[0]).abs().max() > 0.1) == moving, r


def test_traversal_gif_frames_differ_and_are_not_grey(tmp_path):
    model = RenderingModel()
    images = DATA.render(DATA.factors.sample(2, torch.Generator().manual_seed(1)))
    path = tmp_path / "t.gif"
    traversal_gif(model, images, torch.tensor([0.0, 1.0, 0.0, 1.0]), "gaussian", path, frames=10)
    gif = Image.open(path)
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB"), dtype=np.int16))
    assert len(frames) == 10
    assert all(np.abs(frames[i] - frames[i + 1]).max() > 50 for i in range(len(frames) - 1))
    # value-0.75 sprites on black: bright and dark pixels both present
    assert max(f.max() for f in frames) >= 190 and min(f.min() for f in frames) == 0


def _copy(run: Path, where: Path) -> Path:
    target = where / run.name
    shutil.copytree(run, target)
    return target


def _references(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


def test_curve_axes_leave_out_the_first_steps_spike():
    low, high = settled_range([[1e4, *range(20, 0, -1)], [5.0, 30.0]])
    assert -1 < low < 1 and 30 < high < 32  # the 1e4 at step 0 would flatten the rest
    assert settled_range([[], []]) is None


def test_train_report_is_self_contained_and_shows_the_scores(trained_run):
    page = (trained_run / "report.html").read_text()
    import json

    scores = json.loads((trained_run / "metrics.json").read_text())["scores"]
    assert f"{scores['discrete_mig']:.4f}" in page
    refs = _references(page)
    assert len(refs) >= 8  # every figure is in the page
    assert all(r.startswith("data:image/") or (trained_run / r).is_file() for r in refs)
    assert "metrics.json is missing" not in page


def test_report_without_metrics_still_shows_figures(tmp_path, trained_run, run_cli):
    run = _copy(trained_run, tmp_path)
    (run / "metrics.json").unlink()
    code, _out, err = run_cli("report", run, "--no-figures")
    assert code == 0, err
    page = (run / "report.html").read_text()
    assert "metrics.json is missing" in page and len(_references(page)) >= 8


def test_visualize_only_some_figures(tmp_path, trained_run, run_cli):
    run = _copy(trained_run, tmp_path)
    for name in ("geometry.png", "kl.png", "curves.png"):
        (run / name).unlink()
    code, _out, err = run_cli("visualize", run, "--only", "kl,geometry", "--factors", "hue,x")
    assert code == 0, err
    assert (run / "geometry.png").is_file() and (run / "kl.png").is_file() and not (run / "curves.png").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["visualize", "{run}", "--only", "geometry,nope"], "unknown figure nope"),
        (["visualize", "{run}", "--factors", "x,colour"], "no factor 'colour'"),
        (["visualize", "{run}", "--factors", "x,x"], "two different factors"),
        (["report", "{run}", "--factors", "x"], "two different factors"),
        (["visualize", "{missing}"], "run folder not found"),
        (["report", "{missing}"], "run folder not found"),
        (["compare", "{run}", "--out", "{out}"], "at least two"),
        (["compare", "{run}", "{missing}", "--out", "{out}"], "run folder not found"),
    ],
)
def test_bad_input_is_one_line_and_keeps_earlier_outputs(args, words, tmp_path, trained_run, run_cli):
    run = _copy(trained_run, tmp_path)
    before = snapshot(run)
    fill = {"run": str(run), "missing": str(tmp_path / "nope"), "out": str(tmp_path / "cmp")}
    code, _out, err = run_cli(*[a.format(**fill) for a in args])
    assert code == 2 and err.count("\n") == 1 and words in err, err
    assert snapshot(run) == before
    assert not (tmp_path / "cmp").exists()


def test_report_on_a_folder_without_model(tmp_path, run_cli):
    code, _, err = run_cli("report", tmp_path)
    assert code == 2 and err.count("\n") == 1 and ("no checkpoint" in err or "not a run folder" in err)


def test_compare_puts_both_runs_side_by_side(tmp_path, trained_run, run_cli, tiny_overrides):
    import json

    deconv = tmp_path / "deconv"
    code, _, err = run_cli("train", "--set", *tiny_overrides, "model.decoder=deconv", "--out", deconv, "--quiet")
    assert code == 0, err
    code, _out, err = run_cli("compare", trained_run, deconv, "--out", tmp_path / "cmp")
    assert code == 0, err
    page = (tmp_path / "cmp" / "compare.html").read_text()
    for run in (trained_run, deconv):
        mig = json.loads((run / "metrics.json").read_text())["scores"]["discrete_mig"]
        assert f"{mig:.4f}" in page and run.name in page
    assert "model.decoder=sbd" in page and "model.decoder=deconv" in page
    assert all(r.startswith("data:image/") for r in _references(page))
    assert (tmp_path / "cmp" / "geometry.png").is_file()


DRAW_FIGURES = """
import sys
from pathlib import Path
import matplotlib
if sys.argv[2] != "from-env":
    matplotlib.use(sys.argv[2])
import torch
import sbvae.viz.report, sbvae.viz.run_figures  # every figure module
from sbvae.viz.curves import curves_figure
from sbvae.viz.figures import kl_figure
out = Path(sys.argv[1])
kl_figure(torch.tensor([3.0, 0.001, 1.5]), out / "kl.png")
curves_figure({"run": [{"step": s, "split": "train", "loss": 1.0 / s} for s in (1, 2, 3)]}, out / "curves.png")
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


@pytest.mark.parametrize(("chosen", "how"), [("pdf", "pdf"), ("svg", "from-env")])
def test_drawing_leaves_the_users_matplotlib_backend_alone(chosen, how, tmp_path):
    """Importing sbvae.viz and saving figures neither switches the backend a notebook chose
    (with matplotlib.use or MPLBACKEND) nor starts pyplot."""
    env = {**os.environ, "MPLBACKEND": chosen}
    result = subprocess.run(
        [sys.executable, "-c", DRAW_FIGURES, str(tmp_path), how], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [chosen, "False"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "kl.png"]  # no temporary left
    assert {Image.open(tmp_path / name).format for name in ("kl.png", "curves.png")} == {"PNG"}
