"""Inject faults into `sbvae` commands and count how each one ends.

    .venv/bin/python benchmarks/fault_injection.py [--out /tmp/faults]

Every case runs the real command line in a fresh process and is judged by what a user sees:
*one line* (exit 2, or 143 for SIGTERM, and exactly one line on stderr starting with
``sbvae:``), *handled* (exit 0, the damage read past with at most a warning), or a
*traceback* (anything else). After each case the script also checks that
nothing was left half-written (no ``*.tmp``) and, where a run folder existed before, that its
checkpoint still loads. It prints one row per case and the counts at the end; the exit code is
the number of cases that did not end in one clean line.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

# the tests' tiny run and extreme values, not a copy of them
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import TINY
from test_hardening_files import BAD_FILES, dsprites_arrays, write_fortran
from test_resources import EXTREME


def sbvae(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sbvae", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def verdict(done: subprocess.CompletedProcess, codes: tuple[int, ...] = (2,)) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    if done.returncode in codes and len(lines) == 1 and lines[0].startswith("sbvae: "):
        return "one line"
    if done.returncode == 0 and "Traceback" not in done.stderr:
        return "handled"
    return "TRACEBACK"


def train_in_background(run: Path, steps: int) -> subprocess.Popen:
    """`sbvae train` of the tiny run with ``steps`` steps into ``run``, started and left running."""
    command = [sys.executable, "-m", "sbvae", "train", "--set", *TINY[:3], *TINY[4:], f"train.steps={steps}"]
    return subprocess.Popen(
        [*command, "--out", str(run), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def intact(run: Path) -> bool:
    """No temporary left; the checkpoint, if any, loads."""
    if list(run.rglob("*.tmp")):
        return False
    checkpoint = run / "checkpoint.pt"
    return not checkpoint.exists() or "model" in torch.load(checkpoint, weights_only=True)


class Faults:
    def __init__(self, out: Path) -> None:
        self.out, self.rows = out, []
        self.trained = out / "trained"
        done = sbvae("train", "--set", *TINY, "--out", self.trained, "--quiet")
        assert done.returncode == 0, done.stderr

    def copy(self, name: str) -> Path:
        target = self.out / name
        shutil.copytree(self.trained, target)
        return target

    def case(self, name: str, run: Callable[[], tuple[subprocess.CompletedProcess, Path | None]], codes=(2,)) -> None:
        done, folder = run()
        seen = verdict(done, codes)
        if folder is not None and not intact(folder):
            seen = "LEFT DAMAGE"
        last = (done.stderr.strip().splitlines() or [""])[-1][:110]
        self.rows.append((name, seen))
        print(f"{seen:<11} {done.returncode:>4}  {name:<40} {last}", flush=True)

    def extreme_values(self) -> None:
        for value in EXTREME:
            target = self.out / f"extreme-{len(self.rows)}"
            self.case(f"--set {value}"[:40], lambda v=value, t=target: (sbvae("train", "--set", v, "--out", t), t))

    def damaged_files(self) -> None:
        for file, content in (("config.yaml", os.urandom(300)), ("metrics.jsonl", os.urandom(300))):
            run = self.copy(f"damaged-{file}")
            (run / file).write_bytes(content)
            for command in (("report", run, "--no-figures"), ("visualize", run, "--only", "curves,kl")):
                self.case(f"{command[0]}: random bytes in {file}", lambda c=command, r=run: (sbvae(*c), r))

    def paths(self) -> None:
        long = self.out / ("a" * 300)
        self.case("--out: a name of 300 characters", lambda: (sbvae("train", "--set", *TINY, "--out", long), None))
        self.case("--resume: no such folder", lambda: (sbvae("train", "--resume", self.out / "nope"), None))

    def full_disk(self) -> None:
        disk = self.out / "disk"
        disk.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)]).returncode != 0:
            print("(no tmpfs here: full-disk case skipped)")
            return
        try:
            run = disk / "run"
            shutil.copytree(self.trained, run, ignore=shutil.ignore_patterns("*.png", "*.gif", "*.html", "tensorboard"))
            free = shutil.disk_usage(disk).free
            (disk / "filler").write_bytes(b"\0" * max(0, free - 200_000))
            resume = ("train", "--resume", run, "--set", "train.steps=9", "--quiet")
            self.case("full disk during --resume", lambda: (sbvae(*resume), run))
        finally:
            subprocess.run(["umount", str(disk)], check=False)

    def divergence(self) -> None:
        run = self.out / "diverged"
        huge = [*TINY, "train.lr=1e6", "train.checkpoint_every=1"]
        self.case("divergence (train.lr=1e6)", lambda: (sbvae("train", "--set", *huge, "--out", run, "--quiet"), run))

    def two_writers(self) -> None:
        run = self.out / "locked"
        first = train_in_background(run, steps=1_000_000)
        try:
            while not (run / "checkpoint.pt").is_file() and first.poll() is None:
                time.sleep(0.2)
            self.case("a second writer (--resume)", lambda: (sbvae("train", "--resume", run), run))
            first.send_signal(signal.SIGTERM)
            _, err = first.communicate(timeout=120)
            done = subprocess.CompletedProcess(first.args, first.returncode, "", err)
            self.case("SIGTERM during training", lambda: (done, run), codes=(128 + signal.SIGTERM,))
        finally:
            first.kill()

    def dataset_files(self) -> None:
        """Crafted dataset files (issue 27): `sbvae data` on each, then a valid file in Fortran order."""
        for i, (name, (build, _words)) in enumerate(BAD_FILES.items()):
            folder = self.out / f"file-{i}"
            folder.mkdir()
            source, cache = build(folder)
            command = ("data", source, "--out", folder / "samples.png", "--cache", cache or folder / "cache")
            self.case(name[:40], lambda c=command, f=folder: (sbvae(*c), f))
        folder = self.out / "file-fortran"
        folder.mkdir()
        source = write_fortran(folder / "fortran.npz", dsprites_arrays())
        command = ("data", source, "--out", folder / "samples.png", "--cache", folder / "cache")
        self.case("npz: every member in Fortran order", lambda: (sbvae(*command), folder))

    def inputs(self) -> None:
        """Image folders, control characters in a path, values no run can use, the held-out data."""
        from PIL import Image

        photos = self.out / "photos"
        photos.mkdir()
        Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(photos / "deep.png")
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photos / "plain.jpg")
        (photos / "notes.txt").write_text("not an image")
        for name in ("up", "up-again"):  # a link cycle that doubles at every level when followed blindly
            (photos / name).symlink_to(".")
        fake = self.out / "fake"
        fake.mkdir()
        (fake / "image.png").write_text("a text file named .png")

        def data(path: str | Path) -> tuple[subprocess.CompletedProcess, None]:
            return sbvae("data", path, "--out", self.out / "grid.png", "--image-size", "16"), None

        self.case("folder: 16-bit PNG, notes.txt, link cycle", lambda: data(photos))
        self.case("glob **/*.png over a link cycle", lambda: data(f"{photos}/**/*.png"))
        self.case("folder: a .png that is not one", lambda: data(fake))
        odd = self.out / "bad\nsbvae: forged\x1b[31m" / "a.npz"
        self.case("a newline and an escape in data.path", lambda: data(odd))
        annealed = ["objective.name=annealed_vae", "objective.c_steps=1"]
        for values in (["model.latent_dim=1"], ["train.lr=nan"], [*annealed, "objective.c_max=1e39"],
                       [*annealed, "objective.c_max=1e38"]):  # fmt: skip
            run = self.out / f"inputs-{len(self.rows)}"
            train = ("train", "--set", *TINY, *values, "--out", run, "--quiet")
            self.case(" ".join(values)[-40:], lambda t=train, r=run: (sbvae(*t), r))
        held_out = ("reproduce", "held-out", "--out", self.out / "results", "--set", f"data.path={photos}")
        self.case("reproduce held-out --set data.path", lambda: (sbvae(*held_out), None))

    def readers(self) -> None:
        """Readers beside a writer (two `visualize` at once, `visualize` looping while `train`
        runs), and requests the explorer must answer with a 4xx (issue 27)."""
        run = self.copy("two-readers")
        visualize = [sys.executable, "-m", "sbvae", "visualize", str(run)]
        both = [
            subprocess.Popen(visualize, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)
        ]
        for n, process in enumerate(both, start=1):
            _, err = process.communicate(timeout=600)
            done = subprocess.CompletedProcess(process.args, process.returncode, "", err)
            self.case(f"visualize twice at once ({n} of 2)", lambda d=done: (d, run), codes=(0,))

        trained = self.out / "visualized-while-training"
        train = train_in_background(trained, steps=300)
        readers = []
        while train.poll() is None and len(readers) < 20:
            if (trained / "checkpoint.pt").is_file():
                readers.append(sbvae("visualize", trained))
            else:
                time.sleep(0.2)
        _, err = train.communicate(timeout=600)
        done = subprocess.CompletedProcess(train.args, train.returncode, "", err)
        self.case("train while visualize loops on it", lambda: (done, trained), codes=(0,))
        unclean = [r for r in readers if verdict(r, (0,)) != "handled"]
        shown = (unclean or readers or [subprocess.CompletedProcess([], 1, "", "no visualize ran during training")])[0]
        self.case(f"visualize x{len(readers)} during train", lambda: (shown, trained), codes=(0,))

        command = [sys.executable, "-m", "sbvae", "explore", str(self.trained), "--port", "0", "--device", "cpu"]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline() if server.stdout else ""
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            port = int(found.group(1)) if found else 0
            bodies = {
                "explore: a 401-digit latent": b'{"latents": [[' + b"9" * 401 + b", 0" * 9 + b"]]}",
                "explore: a 4,400-digit number": b'{"latents": [[' + b"9" * 4400 + b"]]}",
                "explore: 30,000 nested brackets": b"[" * 30_000 + b"]" * 30_000,
                "explore: Content-Length in superscripts": b"",
            }
            for name, body in bodies.items():
                length = str(len(body)).encode() if body else "\u00b9\u00b2".encode("latin-1")
                request = b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + length
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
                        connection.sendall(request + b"\r\nContent-Type: application/json\r\n\r\n" + body)
                        answer = b"".join(iter(lambda c=connection: c.recv(65536), b"")).decode("latin-1")
                    status = int(answer.split(" ", 2)[1])
                    message = answer.split("\r\n\r\n", 1)[-1]
                except (OSError, ValueError, IndexError) as exc:
                    status, message = 0, f"no answer ({exc})"
                code = 2 if 400 <= status < 500 and '"error"' in message else 1
                done = subprocess.CompletedProcess(command, code, "", f"sbvae: HTTP {status} {message}\n")
                self.case(name, lambda d=done: (d, None))
        finally:
            server.kill()
            server.wait()

    def report(self) -> int:
        counts = {kind: sum(1 for _, seen in self.rows if seen == kind) for kind in {s for _, s in self.rows}}
        print(f"\n{len(self.rows)} cases: " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())))
        return len(self.rows) - counts.get("one line", 0) - counts.get("handled", 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/sbvae-faults"))
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    faults = Faults(args.out)
    for group in (
        faults.extreme_values,
        faults.damaged_files,
        faults.paths,
        faults.full_disk,
        faults.divergence,
        faults.two_writers,
        faults.dataset_files,
        faults.inputs,
        faults.readers,
    ):
        group()
    return faults.report()


if __name__ == "__main__":
    sys.exit(main())
