"""`--backend ray` against a real Ray cluster this module starts on 127.0.0.1: two nodes of one
CPU each (``ray.cluster_utils.Cluster``), shared by its tests and shut down at the end. Where Ray
cannot start, every test here says so and skips.

The same sweep gives the same results and weights as the local backend; a run lost with its node
resumes from its checkpoint elsewhere and ends with an uninterrupted run's weights; a driver
killed mid-study and started again retrains nothing finished; ``reproduce`` runs an experiment;
an address that is malformed, unreachable or no Ray head gives one line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

# Ray otherwise swaps a loopback address for the machine's own (its nodes would listen there):
# read when Ray is imported, so set before, and inherited by the drivers started here.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
# Ray runs its workers at niceness 15: beside the other test processes (pytest-xdist), or any
# busy process, they would get a few per cent of a core and miss the bounds of a broken run.
# The test cluster's workers run at the tests' own priority.
os.environ["RAY_worker_niceness"] = "0"  # noqa: SIM112 (Ray reads this spelling)

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'sbvae[ray]')")

from conftest import TINY, full_probes, snapshot  # noqa: E402
from sbvae.study.runner import Job, run_job  # noqa: E402
from sbvae.study.sweep import plan_sweep  # noqa: E402
from sbvae.training.run_folder import RunPaths, read_metrics, training_process  # noqa: E402

LOOPBACK = "127.0.0.1"
SETTINGS = [t for t in TINY if not t.startswith("train.steps")]
GRID = ["--grid", "objective.beta=1,4", "model.decoder=sbd,deconv", "--seeds", "2", "--num-train", "300"]
TIMING = ("elapsed", "images_per_sec")  # the only fields of metrics.jsonl that depend on the machine


@pytest.fixture(scope="module")
def cluster():
    """Two nodes of one CPU each on 127.0.0.1 (the head holds the cluster's state)."""
    from ray.cluster_utils import Cluster

    started = None
    try:
        started = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 1, "node_ip_address": LOOPBACK, "include_dashboard": False},
        )
        started.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        started.wait_for_nodes(timeout=60)
    except Exception as exc:
        if started is not None:
            started.shutdown()
        pytest.skip(f"Ray cannot start a local cluster here: {str(exc).splitlines()[0] if str(exc) else exc!r}")
    yield started
    started.shutdown()


def _driver(out: Path, address: str, *study: str) -> subprocess.Popen:
    """``sbvae sweep`` on the cluster in its own process (a driver that can be killed)."""
    command = [sys.executable, "-m", "sbvae", "sweep", "--out", str(out), *study, "--backend", "ray"]
    log = (out.parent / f"{out.name}.log").open("w")
    return subprocess.Popen([*command, "--address", address], stdout=log, stderr=subprocess.STDOUT)


def _wait(condition, seconds: float, what: str) -> None:
    """Poll ``condition`` for at most ``seconds`` (a bound for a broken run, not a timing test)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(RunPaths(run).checkpoint, map_location="cpu", weights_only=True)["model"]


def _rows(run: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in read_metrics(RunPaths(run).metrics)]


def _same_run(a: Path, b: Path) -> None:
    """The same metrics.jsonl rows (timing aside) and bit-for-bit the same final weights."""
    assert _rows(a) == _rows(b)
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_sweep_on_ray_gives_the_local_backends_results_and_weights(cluster, tmp_path, run_cli):
    study = [*GRID, "--set", *SETTINGS, "train.steps=6"]
    code, _, err = run_cli("sweep", "--out", tmp_path / "local" / "s", *study, "--jobs", "2")
    assert code == 0, err
    code, out, err = run_cli(
        "sweep", "--out", tmp_path / "ray" / "s", *study, "--backend", "ray", "--address", cluster.address
    )
    assert code == 0, err
    lines = out.splitlines()
    assert any(re.fullmatch(r"runs: \d finished, [12] running, \d waiting, 0 failed", line) for line in lines)
    assert lines[-1] == f"wrote {tmp_path / 'ray' / 's' / 'results.md'}"
    assert "runs: 8 finished, 0 running, 0 waiting, 0 failed" in lines
    local, on_ray = (json.loads((tmp_path / f / "s" / "results.json").read_text()) for f in ("local", "ray"))
    assert on_ray["cells"] == local["cells"] and len(local["cells"]) == 4
    assert on_ray["sweep"] == local["sweep"] and on_ray["unfinished"] == local["unfinished"] == []
    keep = ("name", "seed", "variant", "values", "late_val_drop", "config")
    assert [{k: r[k] for k in keep} for r in on_ray["runs"]] == [{k: r[k] for k in keep} for r in local["runs"]]
    for run in (tmp_path / "local" / "s" / "runs").iterdir():
        _same_run(run, tmp_path / "ray" / "s" / "runs" / run.name)


def _worker_pid_on(node, runs: Path) -> tuple[Path, int] | None:
    """A run in ``runs`` with a checkpoint, trained now by a worker of ``node``, and that worker's id."""
    raylet = node.all_processes["raylet"][0].process.pid
    for run in sorted(runs.glob("*")):
        holder = training_process(run)
        if holder is None or not holder.isdigit() or not RunPaths(run).checkpoint.is_file():
            continue
        try:
            parent = int(Path(f"/proc/{holder}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == raylet:
            return run, int(holder)
    return None


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds a node's workers through Linux /proc")
def test_a_run_lost_with_its_node_resumes_from_its_checkpoint_elsewhere(cluster, tmp_path):
    # a checkpoint every 4 steps, on a logging step (every 2): the rows resumed from it are the same rows
    settings = [*SETTINGS, "train.steps=60", "train.checkpoint_every=4"]
    study = ["--grid", "objective.beta=1", "--seeds", "2", "--num-train", "300", "--set", *settings]
    out = tmp_path / "lost"
    node = next(iter(cluster.worker_nodes))
    driver = _driver(out, cluster.address, *study)
    frozen = None
    try:
        _wait(lambda: _worker_pid_on(node, out / "runs") is not None, 240, "a run training on the second node")
        found = _worker_pid_on(node, out / "runs")
        assert found is not None
        run, frozen = found
        os.kill(frozen, signal.SIGSTOP)  # held between two steps: still training when its node goes
        step = int(torch.load(RunPaths(run).checkpoint, weights_only=True)["step"])
        assert 4 <= step < 60
        cluster.remove_node(node, allow_graceful=False)
        os.kill(frozen, signal.SIGKILL)  # its node's end, for a worker that cannot see it frozen
        cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)  # the cluster back to two nodes
        assert driver.wait(timeout=300) == 0, (tmp_path / "lost.log").read_text()
    finally:
        driver.kill()
    log = (tmp_path / "lost.log").read_text()
    resumed = [line for line in log.splitlines() if line.startswith(f"resuming {run} from step ")]
    assert len(resumed) == 1 and step <= int(resumed[0].split()[4]) < 60, log
    (spec,) = [s for s in plan_sweep(study[1:2], 2, None, settings, "mig", 300)[1] if s.name == run.name]
    reference = tmp_path / "uninterrupted"
    with full_probes():  # the probe the Ray workers, other processes, train
        assert run_job(Job(spec, reference, ["mig"], "cpu", 300), lambda _: None).record is not None
    _same_run(reference / run.name, run)


def test_a_driver_killed_mid_study_continues_and_retrains_nothing_finished(cluster, tmp_path, run_cli):
    study = ["--grid", "model.decoder=sbd", "--seeds", "3", "--num-train", "300", "--set", *SETTINGS, "train.steps=6"]
    out, log = tmp_path / "study", tmp_path / "study.log"
    driver = _driver(out, cluster.address, *study)
    try:  # the driver prints a run's lines once it is trained and evaluated: then it is finished
        _wait(lambda: re.search(r"runs: [12] finished", log.read_text()) is not None, 240, "a first finished run")
        driver.kill()
        driver.wait(timeout=60)
    finally:
        driver.kill()
    assert not (out / "results.json").exists()  # killed before the end
    finished = {run.name: snapshot(run) for run in out.glob("runs/*") if f"evaluating {run}" in log.read_text()}
    assert finished

    code, text, err = run_cli("sweep", "--out", out, *study, "--backend", "ray", "--address", cluster.address)
    assert code == 0, err
    for name, files in finished.items():
        assert f"reusing {out / 'runs' / name}" in text.splitlines()
        assert snapshot(out / "runs" / name) == files
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 3 and results["unfinished"] == []
    assert [i.get("interrupted", False) for i in results["invocations"]] == [True, False]


def test_reproduce_runs_an_experiment_on_ray(cluster, tmp_path, run_cli):
    code, out, err = run_cli(
        "reproduce",
        "colored-sprites",
        "--backend",
        "ray",
        "--address",
        cluster.address,
        "--out",
        tmp_path,
        "--seeds",
        "1",
        "--steps",
        "6",
        "--num-train",
        "300",
        "--set",
        *SETTINGS,
    )
    assert code == 0, err
    results = json.loads((tmp_path / "colored-sprites" / "results.json").read_text())
    assert sorted(r["name"] for r in results["runs"]) == ["deconv-seed1", "sbd-seed1"]
    assert {e["metric"] for e in results["summary"]} == {"discrete_mig", "test_sse"}
    assert "runs: 2 finished, 0 running, 0 waiting, 0 failed" in out.splitlines()
    assert results["command"].startswith("sbvae reproduce colored-sprites") and "--backend" not in results["command"]


@pytest.fixture
def not_ray():
    """A port on 127.0.0.1 that accepts connections and never answers (no Ray head)."""
    server = socket.create_server((LOOPBACK, 0))
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
        for connection in held:
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"{LOOPBACK}:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


def _closed_port() -> int:
    with socket.create_server((LOOPBACK, 0)) as probe:
        return probe.getsockname()[1]  # free again once closed: nothing listens there


@pytest.mark.parametrize("kind", ["nothing listens", "no Ray head"])
def test_an_address_without_a_cluster_is_one_line_within_30_s(kind, tmp_path, request):
    address = f"{LOOPBACK}:{_closed_port()}" if kind == "nothing listens" else request.getfixturevalue("not_ray")
    command = [sys.executable, "-m", "sbvae", "sweep", "--out", str(tmp_path / "s"), "--grid", "objective.beta=1,4"]
    done = subprocess.run(
        [*command, "--backend", "ray", "--address", address], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and address in done.stderr, done.stderr
    assert not list(tmp_path.iterdir())
