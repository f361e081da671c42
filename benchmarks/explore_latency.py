"""How long a slider move of ``sbvae explore`` takes, from request to image, on this machine.

    .venv/bin/python benchmarks/explore_latency.py [--config paper] [--requests 60] [RUN_DIR ...]

Without run folders it builds the preset's SBD and DeConv (untrained: the time to decode does
not depend on the weights), saves them as run folders in a temporary directory, and serves
them as ``sbvae explore`` does. Each case then sends the page's own request (``POST
/api/decode`` with one latent vector per run, a new random vector each time) over HTTP and
times the round trip: JSON in, decoding, PNG encoding, JSON out. It also times the model's
decoding alone, the floor. Printed: median and 90th percentile in milliseconds, for the SBD
alone and for SBD and DeConv side by side (one request decodes both).
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from sbvae.config import load_config, save_config
from sbvae.data import make_dataset
from sbvae.explore.server import start_server
from sbvae.explore.session import ExploreSession, open_session
from sbvae.models import build_vae
from sbvae.training.run_folder import RunPaths, save_checkpoint


def make_runs(preset: str, root: Path) -> list[Path]:
    """Untrained SBD and DeConv run folders of ``preset`` under ``root``."""
    folders = []
    for decoder in ("sbd", "deconv"):
        config = load_config(preset, [f"model.decoder={decoder}"])
        data = make_dataset(config.data.preset, config.data.image_size, config.data.supersample)
        torch.manual_seed(0)
        model = build_vae(config.model, data.image_size, data.channels)
        paths = RunPaths(root / decoder)
        paths.root.mkdir(parents=True)
        save_config(config, paths.config)
        save_checkpoint(paths.checkpoint, {"step": 0, "model": model.state_dict(), "config": config.to_dict()})
        folders.append(paths.root)
    return folders


def percentiles(times: list[float]) -> str:
    ms = np.array(times) * 1000
    return f"median {np.median(ms):6.1f} ms   p90 {np.percentile(ms, 90):6.1f} ms"


def time_requests(session: ExploreSession, requests: int, seed: int = 0) -> list[float]:
    """Round trips of ``POST /api/decode`` (after three warm-up requests)."""
    server, thread = start_server(session, "127.0.0.1", 0)
    host, port = server.server_address[:2]
    rng = np.random.default_rng(seed)
    times = []
    try:
        connection = http.client.HTTPConnection(str(host), int(port), timeout=60)
        for i in range(requests + 3):
            latents = [rng.normal(size=run.latent_dim).tolist() for run in session.runs]
            body = json.dumps({"latents": latents}).encode()
            tick = time.perf_counter()
            connection.request("POST", "/api/decode", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
            elapsed = time.perf_counter() - tick
            if response.status != 200 or len(answer["images"]) != len(session.runs):
                raise RuntimeError(f"bad answer: {response.status} {answer}")
            if response.getheader("Connection") == "close":
                connection.close()
                connection = http.client.HTTPConnection(str(host), int(port), timeout=60)
            if i >= 3:
                times.append(elapsed)
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
    return times


def time_decoding(session: ExploreSession, requests: int) -> list[float]:
    """The model's decoding of one latent vector alone, summed over the runs, in a thread of
    its own as in the server (torch's CPU threads behave differently in the main thread)."""
    times: list[float] = []
    generator = torch.Generator().manual_seed(0)

    def decode() -> None:
        with torch.no_grad():
            for i in range(requests + 3):
                tick = time.perf_counter()
                for run in session.runs:
                    run.model.decode(torch.randn(1, run.latent_dim, generator=generator))
                if i >= 3:
                    times.append(time.perf_counter() - tick)

    worker = threading.Thread(target=decode)
    worker.start()
    worker.join()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="*", help="run folders to serve (default: the preset's SBD and DeConv)")
    parser.add_argument("--config", default="paper", help="preset of the built models (default: paper, 64 px)")
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        folders = [Path(f) for f in args.run_dirs] or make_runs(args.config, Path(tmp))
        cases = [folders[:1], folders] if len(folders) > 1 else [folders]
        for case in cases:
            session = open_session(case, torch.device("cpu"))
            names = " + ".join(f"{r.name} ({r.data.image_size} px)" for r in session.runs)
            print(f"{names}:")
            print(f"  decoding alone          {percentiles(time_decoding(session, args.requests))}")
            print(f"  POST /api/decode trip   {percentiles(time_requests(session, args.requests))}")


if __name__ == "__main__":
    main()
