"""`sbvae explore`: the session, the HTTP endpoints, the command's errors, and the page in a
real (headless) browser."""

from __future__ import annotations

import base64
import errno
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import wait_for
from sbvae.data import PRESETS, Continuous
from sbvae.explore import session as session_module
from sbvae.explore.server import ASSETS, ExploreServer, start_server
from sbvae.explore.session import ExploreSession, RequestError, demo_run_dirs, load_run, open_session, png_bytes
from sbvae.objectives import to_image
from sbvae.viz.grid import to_uint8


@pytest.fixture(scope="module")
def session(trained_run: Path) -> ExploreSession:
    """The tiny trained run twice, as two runs side by side."""
    torch.set_num_threads(1)
    return open_session([trained_run, trained_run], torch.device("cpu"))


@pytest.fixture(scope="module")
def server(session: ExploreSession) -> Iterator[ExploreServer]:
    served, thread = start_server(session, "127.0.0.1", 0)
    yield served
    served.shutdown()
    served.server_close()
    thread.join(timeout=30)


def request(
    server: ExploreServer,
    method: str,
    path: str,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict | None = None,
) -> tuple[int, str, bytes]:
    """Send ``path`` exactly as given (no client-side normalisation); (status, content type, body)."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=60)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    try:
        connection.putrequest(method, path, skip_host="Host" in (headers or {}), skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        if data is not None:
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def data_url_pixels(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return pixels(base64.b64decode(url.split(",", 1)[1]))


def direct(session: ExploreSession, run: int, z: list[float]) -> np.ndarray:
    """What the run's model decodes from ``z``, called directly, as 8-bit pixels."""
    model = session.runs[run].model
    with torch.no_grad():
        image = to_image(model.decode(torch.tensor([z])), session.runs[run].likelihood)[0]
    return to_uint8(image)


# ---------------------------------------------------------------------- session


def test_latents_are_ordered_by_kl_and_paired_across_runs(session):
    run = session.runs[0]
    assert sorted(run.order) == list(range(run.latent_dim))
    assert [run.kl[d] for d in run.order] == sorted(run.kl, reverse=True)
    info = session.describe()
    assert [slot["dims"][0] for slot in info["slots"]] == run.order
    # the same model twice: every latent pairs with itself, same sign
    assert all(slot["dims"][1] == slot["dims"][0] and slot["signs"] == [1, 1] for slot in info["slots"])
    assert {c["factor"] for c in run.carries} <= set(session.factor_names)
    geometry = run.geometry
    assert geometry is not None and geometry["factors"] == ["x", "y"]
    assert len(geometry["lines"]) == len(geometry["colours"]) == len(geometry["inside"])


def test_start_from_factor_values_renders_exactly_those_values(session):
    answer = session.start("factors", 0, {"x": 0.2, "y": 0.8, "shape": 2, "hue": 0.3})
    assert answer["values"]["x"] == pytest.approx(0.2, abs=1 / 62)  # snapped to the 32-value grid
    assert answer["values"]["shape"] == 2 and answer["values"]["hue"] == pytest.approx(0.3)
    assert answer["inside"] is True
    values = session.factor_values({"x": 0.2, "y": 0.8, "shape": 2, "hue": 0.3})
    expected = to_uint8(session.data.images(values)[0])
    assert np.array_equal(data_url_pixels(answer["input"]), expected)


def test_a_grey_run_and_a_run_without_ground_truth_explore(run_cli, tmp_path, tiny_overrides):
    """dSprites (one channel) and a folder of images (no factors: no controls, no geometry,
    latents paired by KL rank); the decodings are still the models' own."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    runs = []
    for name, setting in (("grey", "data.preset=dsprites"), ("no-factors", f"data.path={folder}")):
        code, _, err = run_cli("train", "--set", *tiny_overrides, setting, "--out", tmp_path / name, "--quiet")
        assert code == 0, err
        runs.append(tmp_path / name)
    grey = open_session([runs[0]], torch.device("cpu"))
    answer = grey.start("factors", 0, {"shape": 1, "x": 0.5})
    assert data_url_pixels(answer["input"]).shape == (32, 32, 3)  # grey PNG, read as RGB
    z = answer["runs"][0]["mean"]
    assert np.array_equal(pixels(png_bytes(grey.decode(0, z))), direct(grey, 0, z)[:, :, [0, 0, 0]])
    photos = open_session([runs[1], runs[1]], torch.device("cpu"))
    info = photos.describe()
    assert info["ground_truth"] is False and info["factors"] == [] and info["runs"][0]["geometry"] is None
    assert [slot["dims"] for slot in info["slots"]] == [[d, d] for d in photos.runs[0].order]
    answer = photos.start("random", 5)
    assert answer["values"] is None and answer["input"]
    with pytest.raises(RequestError, match="no ground-truth factors"):
        photos.start("factors", 0, {"x": 0.5})


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_run_of_every_preset_explores(preset, run_cli, tmp_path, tiny_overrides, monkeypatch):
    """Each preset's run starts from chosen factor values and decodes what its model decodes
    (two training steps: what is checked is the plumbing, not what was learned)."""
    monkeypatch.setattr(session_module, "MATCH_SAMPLES", 200)  # encoding 2,000 ray-cast scenes per preset is slow
    run = tmp_path / preset
    settings = [f"data.preset={preset}", "train.steps=2", "train.checkpoint_every=2", "train.eval_every=2"]
    code, _, err = run_cli("train", "--set", *tiny_overrides, *settings, "--out", run, "--quiet")
    assert code == 0, err
    explored = open_session([run], torch.device("cpu"))
    info = explored.describe()
    assert info["ground_truth"] is True and info["runs"][0]["geometry"] is not None
    data = explored.runs[0].data
    chosen = {}
    for name in data.factor_names:
        factor = data.factor(name)
        chosen[name] = factor.low if isinstance(factor, Continuous) else float(factor.values[-1])
    answer = explored.start("factors", 0, chosen)
    as_rgb = lambda a: np.broadcast_to(a, (*a.shape[:2], 3))  # one channel: a grey PNG, read as RGB
    expected = to_uint8(data.images(explored.factor_values(chosen))[0])
    assert np.array_equal(data_url_pixels(answer["input"]), as_rgb(expected))
    z = answer["runs"][0]["mean"]
    assert np.array_equal(pixels(png_bytes(explored.decode(0, z))), as_rgb(direct(explored, 0, z)))


# ---------------------------------------------------------------------- endpoints


def test_the_page_and_its_assets_are_served(server):
    for path, (_name, content_type) in ASSETS.items():
        status, kind, body = request(server, "GET", path)
        assert status == 200 and kind == content_type and body
    status, kind, body = request(server, "GET", "/api/info")
    info = json.loads(body)
    assert status == 200 and len(info["runs"]) == 2 and info["ground_truth"] is True
    assert [f["name"] for f in info["factors"]][:2] == ["shape", "scale"]


def test_decoding_a_latent_vector_returns_what_the_model_decodes(server, session):
    z = [0.5, -1.0, 2.0, 0.0, 0.25, -0.75, 1.5, -2.5, 0.1, 3.0]
    status, kind, body = request(server, "GET", "/api/decode.png?run=1&z=" + ",".join(map(str, z)))
    assert status == 200 and kind == "image/png"
    assert np.array_equal(pixels(body), direct(session, 1, z))
    status, _, body = request(server, "POST", "/api/decode", {"latents": [z, None]})
    images = json.loads(body)["images"]
    assert status == 200 and images[1] is None
    assert np.array_equal(data_url_pixels(images[0]), direct(session, 0, z))


def test_start_answers_posterior_means_that_decode_to_the_reconstruction(server, session):
    status, _, body = request(server, "POST", "/api/start", {"mode": "random", "seed": 7})
    answer = json.loads(body)
    assert status == 200 and answer["input"] and set(answer["values"]) == set(session.factor_names)
    for j, run in enumerate(answer["runs"]):
        assert np.array_equal(data_url_pixels(run["reconstruction"]), direct(session, j, run["mean"]))
    status, _, body = request(server, "POST", "/api/start", {"mode": "prior", "seed": 7})
    answer = json.loads(body)
    assert status == 200 and answer["input"] is None and answer["runs"][0]["decoded"]


BAD_REQUESTS = [
    ("GET", "/api/decode.png?run=0&z=1,2", None, "takes 10 latent values"),
    ("GET", "/api/decode.png?run=5&z=" + ",".join(["0"] * 10), None, "'run' must be an integer in [0, 1]"),
    ("GET", "/api/decode.png?run=x&z=0", None, "'run' must be an integer"),
    ("GET", "/api/decode.png?run=0&z=a,b", None, "comma-separated numbers"),
    ("GET", "/api/decode.png?run=0&z=" + ",".join(["1e9"] * 10), None, "must lie in [-50.0, 50.0]"),
    ("GET", "/api/decode.png?run=0&z=" + ",".join(["nan"] * 10), None, "finite number"),
    ("GET", "/api/decode.png?z=0", None, "give 'run' once"),
    ("POST", "/api/decode", {"latents": [[0] * 10]}, "a list of 2 latent vectors"),
    ("POST", "/api/decode", {"latents": [[0] * 10, ["a"] * 10]}, "latent 0 must be a finite number"),
    ("POST", "/api/decode", {"latents": "no"}, "a list of 2"),
    ("POST", "/api/decode", [1, 2], "must be a JSON object"),
    ("POST", "/api/start", {"mode": "nothing"}, "'mode' must be random, factors or prior"),
    ("POST", "/api/start", {"mode": "random", "seed": -3}, "'seed' must be an integer"),
    ("POST", "/api/start", {"mode": "random", "seed": 1.5}, "'seed' must be an integer"),
    ("POST", "/api/start", {"mode": "factors", "values": {"x": 7}}, "factor x must lie in [0.0, 1.0]"),
    ("POST", "/api/start", {"mode": "factors", "values": {"hue": -1}}, "factor hue must lie in"),
    ("POST", "/api/start", {"mode": "factors", "values": {"colour": 1}}, "unknown factor 'colour'"),
    ("POST", "/api/start", {"mode": "factors", "values": [1]}, "'values' must be an object"),
    ("POST", "/api/decode", {"latents": [[10**400] + [0] * 9, None]}, "latent 0 must be a finite number"),
    ("POST", "/api/decode", {"latents": [[-(10**400)] * 10, None]}, "latent 0 must be a finite number"),
    ("POST", "/api/start", {"mode": "factors", "values": {"x": 10**400}}, "factor x must be a finite number"),
    ("POST", "/api/start", {"mode": "random", "seed": 10**400}, "'seed' must be an integer"),
    ("POST", "/api/start", {"mode": "x" * 60_000}, "'mode' must be random, factors or prior"),
    ("GET", "/api/start", None, "GET is not allowed"),
    ("POST", "/api/info", {}, "POST is not allowed"),
    ("DELETE", "/api/info", None, "DELETE is not allowed"),
]


@pytest.mark.parametrize(("method", "path", "body", "message"), BAD_REQUESTS)
def test_a_bad_request_gets_a_4xx_with_a_message_and_the_server_keeps_serving(server, method, path, body, message):
    status, kind, answer = request(server, method, path, body)
    assert 400 <= status < 500 and kind == "application/json"
    assert message in json.loads(answer)["error"]
    assert request(server, "GET", "/api/info")[0] == 200


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"{not json", 400, "not JSON"),
        (b"\xff\xfe", 400, "not JSON"),
        (b"x" * (64 * 1024 + 1), 413, "at most"),
        (b'{"latents": [[' + b"7" * 4400 + b"]]}", 400, "not JSON"),  # past Python's 4300-digit limit
        (b"[" * 30_000 + b"]" * 30_000, 400, "nested too deeply"),
        (b'{"a": ' * 9_000 + b"1" + b"}" * 9_000, 400, "nested too deeply"),
    ],
)
def test_a_malformed_body_gets_a_4xx_and_the_server_keeps_serving(server, raw, status, message):
    answer = request(server, "POST", "/api/decode", raw=raw)
    assert answer[0] == status and message in json.loads(answer[2])["error"]
    assert request(server, "GET", "/api/info")[0] == 200


def test_a_value_too_deep_to_print_is_refused_in_a_short_message(server):
    """A body that parses but nests deeply: the message quotes at most the start of the value."""
    answer = request(server, "POST", "/api/start", raw=b'{"mode": ' + b"[" * 900 + b"]" * 900 + b"}")
    assert answer[0] == 400 and "'mode' must be random, factors or prior" in json.loads(answer[2])["error"]
    assert len(answer[2]) < 200
    deep = b'{"a": ' * 900 + b"1" + b"}" * 900
    answer = request(server, "POST", "/api/decode", raw=b'{"latents": [' + deep + b", null]}")
    assert answer[0] == 400 and "takes 10 latent values" in json.loads(answer[2])["error"]
    assert len(answer[2]) < 200


def test_a_request_without_a_length_or_from_a_foreign_host_is_refused(server):
    assert request(server, "POST", "/api/start")[0] == 411
    for length in ("\u00b2", "\u00b9\u00b2", "1\u00b3", "+5", "0x10", "-1"):  # superscripts pass str.isdigit()
        status, _, body = request(server, "POST", "/api/start", headers={"Content-Length": length})
        assert status == 411 and "Content-Length" in json.loads(body)["error"], length
    status, _, body = request(server, "GET", "/api/info", headers={"Host": "attacker.example"})
    assert status == 403 and "localhost" in json.loads(body)["error"]


def test_a_half_sent_request_does_not_stop_the_server(server):
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=10) as raw:
        raw.sendall(b'POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"lat')
    with socket.create_connection((str(host), int(port)), timeout=10) as raw:
        raw.sendall(b"\x00\x01garbage\r\n\r\n")
        raw.recv(1024)
    assert request(server, "GET", "/api/info")[0] == 200


TRAVERSALS = [
    "/../../../../etc/passwd",
    "/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/../../../pyproject.toml",
    "/static/app.js",
    "/app.js/../../session.py",
    "/..%252f..%252fsession.py",
    "//etc/passwd",
    "/etc/passwd",
    "/session.py",
    "/server.py",
    "/static/%2e%2e/session.py",
    "/app.js%00.html",
    "/.%2e/.%2e/.%2e/pyproject.toml",
    "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "/index.html/../../../../../../etc/passwd",
    "/demo/sbd/checkpoint.pt",
    "/" + str(Path(__file__).resolve()),
    "http://127.0.0.1/../../etc/passwd",
    "/\\..\\..\\etc\\passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_file_outside_the_apps_assets_can_be_read(server, path):
    status, kind, body = request(server, "GET", path)
    assert status == 404 and kind == "application/json", path
    assert json.loads(body) == {"error": "not found"}
    for secret in (b"root:", b"[project]", b"import ", b"def "):
        assert secret not in body


def test_only_the_named_assets_exist(server):
    static = Path(__file__).resolve().parents[1] / "src" / "sbvae" / "explore" / "static"
    served = {name for name, _ in ASSETS.values()}
    assert served == {p.name for p in static.iterdir()}  # every file of the folder, nothing else


# ---------------------------------------------------------------------- the command


def test_the_command_prints_its_address_and_serves_until_interrupted(trained_run):
    command = [sys.executable, "-m", "sbvae", "explore", str(trained_run), "--port", "0", "--device", "cpu"]
    # SIGINT back to its default in the child: a shell starts background jobs with it ignored,
    # and Python then never turns it into KeyboardInterrupt (Ctrl-C is what is tested here)
    restore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore_sigint
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        found = re.search(r"open (http://127\.0\.0\.1:(\d+)/)", line)
        assert found, line + (process.stderr.read() if process.stderr else "")
        connection = http.client.HTTPConnection("127.0.0.1", int(found.group(2)), timeout=60)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200 and b"sbvae explore" in response.read()
        connection.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()  # never leave a server behind, whatever failed above
    assert process.returncode == 130 and "interrupted" in err


def test_explore_reports_missing_or_broken_runs_in_one_line(run_cli, tmp_path, trained_run):
    code, _, err = run_cli("explore", tmp_path / "nothing", "--port", "0")
    assert code == 2 and err.strip().count("\n") == 0 and "run folder not found" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli("explore", empty, "--port", "0")
    assert code == 2 and "no checkpoint" in err
    broken = tmp_path / "broken"
    shutil.copytree(trained_run, broken)
    (broken / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, _, err = run_cli("explore", broken, "--port", "0")
    assert code == 2 and "corrupt or unreadable" in err and err.strip().count("\n") == 0
    (tmp_path / "a-file").write_text("not a folder")
    code, _, err = run_cli("explore", tmp_path / "a-file", "--port", "0")
    assert code == 2 and "not a run folder" in err
    code, _, err = run_cli("explore", "--port", "0")
    assert code == 2 and "--demo" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_explore_reports_an_unreadable_run_folder(run_cli, tmp_path, trained_run):
    locked = tmp_path / "locked"
    shutil.copytree(trained_run, locked)
    locked.chmod(0)
    try:
        code, _, err = run_cli("explore", locked, "--port", "0")
    finally:
        locked.chmod(0o755)
    assert code == 2 and err.strip().count("\n") == 0


def test_explore_reports_a_busy_port_and_a_bad_host_in_one_line(run_cli, trained_run):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run_cli("explore", trained_run, "--port", str(port))
    assert code == 2 and f"port {port} on 127.0.0.1 is already in use" in err
    code, _, err = run_cli("explore", trained_run, "--host", "no-such-host.invalid", "--port", "0")
    assert code == 2 and "cannot listen on host 'no-such-host.invalid'" in err
    code, _, err = run_cli("explore", trained_run, "--host", "192.0.2.77", "--port", "0")  # not this machine's
    assert code == 2 and "cannot listen on 192.0.2.77" in err
    code, _, err = run_cli("explore", trained_run, "--port", "70000")
    assert code == 2 and "--port must be in [0, 65535]" in err


def test_the_demo_models_load():
    folders = demo_run_dirs()
    assert [f.name for f in folders] == ["sbd", "deconv"]
    for folder in folders:
        assert (folder / "checkpoint.pt").stat().st_size < 4_000_000  # weights only, no optimizer state
        run = load_run(folder, torch.device("cpu"))
        assert (run.name, run.config.data.preset) == (
            folder.name.replace("sbd", "SBD").replace("deconv", "DeConv"),
            "colored_sprites",
        )
        assert sum(kl >= 0.1 for kl in run.kl) >= 5  # trained: several latents carry information


def test_the_listen_backlog_holds_hundreds_of_waiting_clients(monkeypatch):
    """Many clients connecting at once wait in the kernel's queue rather than retrying their
    SYN for seconds: the server asks ``listen`` for a backlog of several hundred (not 5)."""
    asked: list[int] = []
    listen = socket.socket.listen

    def spy(self: socket.socket, backlog: int = socket.SOMAXCONN) -> None:
        asked.append(backlog)
        listen(self, backlog)

    monkeypatch.setattr(socket.socket, "listen", spy)
    served = ExploreServer("127.0.0.1", 0)
    try:
        assert served.request_queue_size >= 512 and asked == [served.request_queue_size]
    finally:
        served.server_close()


def test_busy_port_error_names_the_cause():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(Exception, match="already in use") as caught:
            ExploreServer("127.0.0.1", port)
    assert getattr(caught.value, "errno", errno.EADDRINUSE) == errno.EADDRINUSE


# ---------------------------------------------------------------------- a real browser

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)
CHROMEDRIVER = next((p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if Path(p).exists()), None)


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium driven by Selenium through the system chromedriver (nothing is
    downloaded: both paths are given, so selenium-manager is never asked)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no chromium browser or chromedriver found (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1000")
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def test_in_a_browser_a_slider_changes_the_decoding_and_a_factor_changes_the_input(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    host, port = server.server_address[:2]
    browser.get(f"http://{host}:{port}/")
    wait_for(lambda: browser.execute_script("return document.body.dataset.ready") == "true", 120)
    assert browser.find_element(By.ID, "status").get_attribute("class") != "error"
    decoded = browser.find_element(By.CSS_SELECTOR, '.run[data-run="0"] img.decoded')
    before = decoded.get_attribute("src")
    assert before.startswith("data:image/png")
    count = int(browser.execute_script("return document.body.dataset.decodes"))

    # move the first slider to +3 as a user would (the input event fires)
    slider = browser.find_element(By.CSS_SELECTOR, 'input.latent[data-slot="0"]')
    browser.execute_script(
        "arguments[0].value = '3'; arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", slider
    )
    wait_for(lambda: int(browser.execute_script("return document.body.dataset.decodes")) > count, 60)
    after = decoded.get_attribute("src")
    assert after != before
    z = browser.execute_script("return currentLatents()[0]")
    run = server.session.runs[0]
    assert z[run.order[0]] == pytest.approx(server.session.start("random", 0)["runs"][0]["mean"][run.order[0]] + 3)
    assert np.array_equal(data_url_pixels(after), direct(server.session, 0, z))

    # choose another shape: the input changes
    image = browser.find_element(By.ID, "input")
    shown = image.get_attribute("src")
    select = Select(browser.find_element(By.CSS_SELECTOR, 'select[data-factor="shape"]'))
    current = select.first_selected_option.get_attribute("value")
    other = next(o.get_attribute("value") for o in select.options if o.get_attribute("value") != current)
    select.select_by_value(other)
    wait_for(lambda: image.get_attribute("src") != shown, 60)
    assert browser.execute_script("return document.body.dataset.start") == "factors"
    assert not browser.find_element(By.ID, "status").get_attribute("class")

    # a sweep plays -2..+2 through the decoder, then puts the slider back; reset returns to the mean
    decodes = lambda: int(browser.execute_script("return document.body.dataset.decodes"))
    count = decodes()
    browser.find_element(By.CSS_SELECTOR, 'button.sweep[data-slot="1"]').click()
    wait_for(lambda: decodes() >= count + 10, 120)
    wait_for(lambda: browser.execute_script("return !state.sweeping && !state.inflight && state.offsets[1] === 0"))
    browser.find_element(By.CSS_SELECTOR, 'button.reset[data-slot="0"]').click()
    wait_for(lambda: slider.get_attribute("value") == "0")
    browser.find_element(By.ID, "prior-draw").click()
    wait_for(lambda: browser.execute_script("return document.body.dataset.start") == "prior")
    assert not browser.find_element(By.ID, "input-view").is_displayed() or image.get_attribute("src") == ""
