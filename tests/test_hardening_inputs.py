"""Issue 27, inputs: image folders (16-bit PNGs, link cycles, files that are not images),
control characters in messages, values no run can use, and the held-out experiment's data."""

from __future__ import annotations

import re
import resource
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sbvae.config import load_config
from sbvae.data.folders import decode, image_folder
from sbvae.errors import ConfigError, UserError, printable
from sbvae.models import count_parameters
from sbvae.objectives.factor_vae import Discriminator
from sbvae.study.experiments import load_experiment, plan
from sbvae.training.resources import estimate
from test_cli import assert_one_line_error
from test_data_files import write_images

# -- image folders ---------------------------------------------------------------------------


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path):
    grey = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as opened:
        assert opened.mode == "I;16"  # what Pillow makes of a 16-bit greyscale PNG
    expected = np.rint(grey / 257).astype(np.uint8)
    assert np.array_equal(decode(tmp_path / "deep.png", 64), np.broadcast_to(expected, (3, 64, 64)))


def _photos_with_links(root):
    """Four images (three PNG, one JPEG) under ``photos/sub``, two links from ``sub`` back to
    ``photos`` (a cycle that grows as 2^depth when followed blindly) and a second name for one image."""
    photos = root / "photos"
    write_images(photos / "sub")
    (photos / "sub" / "up").symlink_to("..")
    (photos / "sub" / "up-again").symlink_to("..")
    (photos / "alias.png").symlink_to(photos / "sub" / "img0.png")
    return photos


@pytest.mark.parametrize(("pattern", "count"), [("", 4), ("/**/*.png", 3), ("/**/*", 4), ("/*/*.jpg", 1)])
def test_a_link_cycle_is_walked_once_and_each_file_counted_once(tmp_path, pattern, count):
    photos = _photos_with_links(tmp_path)
    files = image_folder(f"{photos}{pattern}", 16).files
    assert len(files) == len({f.resolve() for f in files}) == count, files


def test_non_image_files_are_skipped_and_counted_in_one_line(tmp_path, run_cli):
    photos = tmp_path / "photos"
    images = write_images(photos)
    for name in ("notes.txt", "labels.csv", ".DS_Store"):
        (photos / name).write_text("not an image")
    assert image_folder(str(photos), 16).files == images
    code, out, err = run_cli("data", photos, "--out", tmp_path / "grid.png", "--image-size", 16)
    assert code == 0, err
    skipped = [line for line in out.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and "2 files" in skipped[0] and ".csv, .txt" in skipped[0], out

    (photos / "broken.png").write_text("a text file named .png")  # an image's name: still an error
    code, _, err = run_cli("data", photos, "--out", tmp_path / "grid.png", "--image-size", 16)
    assert_one_line_error(code, err, "broken.png")


def test_a_folder_of_no_images_says_what_it_skipped(tmp_path, run_cli):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.md").write_text("no images here")
    code, _, err = run_cli("data", tmp_path / "notes", "--out", tmp_path / "grid.png")
    assert_one_line_error(code, err, "has no images", "1 file", ".md")


# -- messages stay one line ------------------------------------------------------------------


def test_printable_escapes_control_characters():
    assert printable("a\nb\r\t\x1b[31mc\x00\u2028\udcff d") == "a\\nb\\r\\t\\x1b[31mc\\x00\\u2028\\udcff d"


def test_a_newline_or_a_terminal_escape_in_a_path_stays_in_one_line(tmp_path, run_cli):
    odd = tmp_path / "bad\nsbvae: error: forged\x1b[31m"
    code, _, err = run_cli("data", odd / "nothing.npz", "--out", tmp_path / "grid.png")
    assert_one_line_error(code, err, "bad\\nsbvae: error: forged\\x1b[31m/nothing.npz")
    assert "\x1b" not in err

    photos = tmp_path / "photos"
    write_images(photos)
    (photos / "fake\nsbvae: error: forged.png").write_text("a text file named .png")
    code, _, err = run_cli("data", photos, "--out", tmp_path / "grid.png")
    assert_one_line_error(code, err, "fake\\nsbvae: error: forged.png")

    code, _, err = run_cli("train", "--bogus\n\x1b[2Jx")
    assert_one_line_error(code, err, "--bogus\\n\\x1b[2Jx")


# -- values no run can use -------------------------------------------------------------------


def test_a_single_latent_is_refused_before_training(tmp_path, run_cli, tiny_overrides):
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--set", *tiny_overrides, "model.latent_dim=1", "--out", run, "--quiet")
    assert_one_line_error(code, err, "model.latent_dim", "at least 2")
    assert not run.exists()


@pytest.mark.parametrize("spelling", ["nan", ".nan", "NaN", "inf", "-.inf", "-Infinity", "1e39", "-3.5e38"])
def test_every_non_finite_or_float32_overflowing_spelling_gets_one_message(spelling):
    with pytest.raises(ConfigError) as caught:
        load_config("default", [f"train.lr={spelling}"])
    assert str(caught.value).startswith("train.lr must be a finite number within float32's range"), caught.value


def test_nan_and_dot_nan_say_the_same():
    messages = set()
    for spelling in ("nan", ".nan"):
        with pytest.raises(ConfigError) as caught:
            load_config("default", [f"objective.sigma={spelling}"])
        messages.add(str(caught.value))
    assert len(messages) == 1, messages


def test_a_capacity_past_float32_is_refused():
    with pytest.raises(ConfigError, match=r"objective\.c_max must be a finite number"):
        load_config("default", ["objective.name=annealed_vae", "objective.c_max=1e39"])


def test_a_loss_that_overflows_is_divergence(tmp_path, run_cli, tiny_overrides):
    """C reaches 1e38 nats at step 2, so gamma * |KL - C| is infinite while every gradient is finite."""
    run = tmp_path / "run"
    overflow = ["objective.name=annealed_vae", "objective.c_max=1e38", "objective.c_steps=1", "train.log_every=1"]
    code, _, err = run_cli("train", "--set", *tiny_overrides, *overflow, "--out", run, "--quiet")
    assert_one_line_error(code, err, "training diverged at step 2", "the loss is inf", "objective.c_max (now 1e+38)")
    assert "Infinity" not in (run / "metrics.jsonl").read_text()  # step 1 logged, step 2 not


# The parameter report builds the decoder not trained beside the one that is: under a cap of
# 4 GB of address space it must not allocate the 230 GB of a DeConv decoder 60,000 channels wide.
REPORT = """
from sbvae.config import load_config
from sbvae.data import make_dataset
from sbvae.models import build_vae
from sbvae.training.loop import parameter_report
config = load_config("default", ["model.deconv_channels=60000"])
data = make_dataset(config.data.preset, config.data.image_size)
print(parameter_report(config, build_vae(config.model, data.image_size, data.channels), data))
"""


def test_the_parameter_report_allocates_no_decoder(tmp_path):
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    done = subprocess.run([sys.executable, "-c", REPORT], capture_output=True, text=True, timeout=300, preexec_fn=cap)
    assert done.returncode == 0, done.stderr[-2000:]
    deconv = int(done.stdout.split("deconv decoder ")[1].split()[0].replace(",", ""))
    assert deconv > 60_000**2 * 16


def test_the_estimate_counts_the_objective_modules():
    plain = estimate(load_config("default"))["model"]
    factor = estimate(load_config("default", ["objective.name=factor_vae"]))["model"]
    assert factor - plain == count_parameters(Discriminator(10)) * 4 * 4  # weights, gradients, Adam's moments


@pytest.mark.parametrize(
    "override",
    ["model.deconv_channels=10000000", "model.sbd_channels=100000000000", "model.encoder_hidden=10000000000000000000"],
)
def test_widths_past_their_bound_are_refused(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=re.escape(f"{key} must be at most")):
        load_config("default", [override])


# -- the held-out experiment -----------------------------------------------------------------


def test_the_held_out_experiment_refuses_data_path(tmp_path, run_cli):
    photos = tmp_path / "photos"
    write_images(photos)
    with pytest.raises(UserError, match=r"data\.path"):
        plan(load_experiment("held-out"), overrides=[f"data.path={photos}"])
    with pytest.raises(UserError, match=re.escape("data.preset=colored_sprites would replace it")):
        plan(load_experiment("small-objects"), overrides=["data.preset=colored_sprites"])
    assert plan(load_experiment("colored-sprites"), seeds=1, overrides=[f"data.path={photos}"])  # no preset of its own
    results = tmp_path / "results"
    code, _, err = run_cli("reproduce", "held-out", "--out", results, "--set", f"data.path={photos}")
    assert_one_line_error(code, err, "held-out", "colored_sprites_heldout", "data.path")
    assert not results.exists()
