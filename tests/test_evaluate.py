"""`sbvae evaluate` and the quick evaluation at the end of `sbvae train`."""

from __future__ import annotations

import json
import math
import shutil

from conftest import snapshot

ARRAY_KEYS = {
    "discrete_mig",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness_train",
    "dci_informativeness_test",
    "sap_score",
    "modularity_score",
    "explicitness_score_train",
    "explicitness_score_test",
    "gaussian_total_correlation",
    "gaussian_wasserstein_correlation",
    "gaussian_wasserstein_correlation_norm",
    "mutual_info_score",
}
SAMPLER_KEYS = {
    "factor_vae_train_accuracy",
    "factor_vae_eval_accuracy",
    "beta_vae_train_accuracy",
    "beta_vae_eval_accuracy",
}


def test_train_ends_with_a_quick_mig(trained_run):
    result = json.loads((trained_run / "metrics.json").read_text())
    # the default preset also logs fidelity (train.fidelity_every), so the end's scores have it too
    assert result["step"] == 6 and result["metrics"] == ["mig", "fidelity"]
    assert 0.0 <= result["scores"]["discrete_mig"] <= 1.0
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "mig"] == [6]


def test_evaluate_writes_every_metric(tmp_path, trained_run, run_cli):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    code, out, err = run_cli(
        "evaluate", run, "--num-train", "120", "--num-test", "80", "--fidelity-samples", "200", "--device", "cpu"
    )
    assert code == 0, err
    result = json.loads((run / "metrics.json").read_text())
    assert set(result["scores"]) >= ARRAY_KEYS | SAMPLER_KEYS | {"fidelity_shape", "fidelity_shape_control"}
    for key in ARRAY_KEYS | SAMPLER_KEYS:
        assert math.isfinite(result["scores"][key]), key
    assert result["representation"] == "mean" and result["seed"] == 0
    assert result["num_train"] == 120 and result["num_test"] == 80
    assert {"torch", "numpy", "scipy", "scikit-learn"} <= set(result["versions"])
    rec = result["reconstruction"]
    assert len(rec["kl_per_dim"]) == 10 and 0 <= rec["active_latents"] <= 10
    assert "discrete_mig" in out and "metrics.json" in out


def test_evaluate_is_repeatable(tmp_path, trained_run, run_cli):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    scores = []
    for _ in range(2):
        code, _, err = run_cli("evaluate", run, "--metrics", "mig,unsupervised", "--num-train", "500")
        assert code == 0, err
        scores.append(json.loads((run / "metrics.json").read_text())["scores"])
    assert scores[0] == scores[1]


def test_evaluate_bad_input_is_one_line(tmp_path, trained_run, run_cli):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    for argv in (
        ["evaluate", run, "--metrics", "mig,nonsense"],
        ["evaluate", tmp_path / "missing"],
        ["evaluate", tmp_path],  # a folder without a checkpoint
        ["evaluate", run, "--num-train", "1"],
    ):
        code, _, err = run_cli(*argv)
        assert code == 2, argv
        assert len(err.strip().splitlines()) == 1 and err.startswith("sbvae: error:"), err
        assert "Traceback" not in err
    assert snapshot(run) == before


def test_train_logs_mig_every_n_steps(tmp_path, run_cli, tiny_overrides):
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--set", *tiny_overrides, "train.mig_every=2", "--out", run, "--quiet")
    assert code == 0, err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    mig_rows = [r for r in rows if r["split"] == "mig"]
    assert [r["step"] for r in mig_rows] == [2, 4, 6]
    for r in mig_rows:
        assert 0.0 <= r["discrete_mig"] <= 1.0 and len(r["mig_per_factor"]) == 8


def test_negative_mig_interval_is_a_config_error(tmp_path, run_cli, tiny_overrides):
    code, _, err = run_cli(
        "train", "--set", *tiny_overrides, "train.mig_every=-1", "--out", tmp_path / "run", "--quiet"
    )
    assert code == 2 and "train.mig_every" in err
    assert not (tmp_path / "run").exists()


def test_encoding_streams_in_bounded_batches(trained_run):
    """However many samples are asked for, the encoder never sees more than one batch at once."""
    import torch

    from sbvae.data import make_dataset, make_generator
    from sbvae.evaluation.sampling import GroundTruthSampler
    from sbvae.training.run_folder import load_model

    config, model, _ = load_model(trained_run, torch.device("cpu"))
    data = make_dataset(config.data.preset, config.data.image_size, config.data.supersample)
    seen: list[int] = []
    model.encoder.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])))
    sampler = GroundTruthSampler(data, model, torch.device("cpu"), batch_size=64)
    values = sampler.sample_values(1_000, make_generator(0, "test"))
    codes = sampler.encode_values(values)
    assert codes.shape == (1_000, model.encoder.latent_dim) and codes.dtype.name == "float32"
    assert max(seen) == 64 and sum(seen) == 1_000
    with torch.inference_mode():  # the batching does not change the codes
        direct = model.encoder(data.render(values[:64]))[0].numpy()
    assert abs(codes[:64] - direct).max() < 1e-5
