"""Take the README's picture of ``sbvae explore`` with headless chromium.

    .venv/bin/python scripts/explore_screenshot.py [RUN_DIR ...] [--out docs/images/explore.png]

Without run folders it opens the demo models (SBD and DeConv on coloured sprites). The page
starts from a data sample (``--seed``); the first latent is moved by ``--offset`` so the
decodings and the marked points differ from the reconstructions. Needs Debian's ``chromium``
and ``chromium-driver`` and selenium (the test extras); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import base64
import time
from pathlib import Path

import torch
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from sbvae.explore.server import start_server
from sbvae.explore.session import demo_run_dirs, open_session


def wait(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not get there")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="*")
    parser.add_argument("--out", default="docs/images/explore.png")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--slot", type=int, default=0, help="which slider to move (0: highest KL)")
    parser.add_argument("--offset", type=float, default=1.5)
    parser.add_argument("--size", default="1500,1150", help="window width,height in pixels")
    args = parser.parse_args()

    session = open_session(args.run_dirs or demo_run_dirs(), torch.device("cpu"))
    server, thread = start_server(session, "127.0.0.1", 0)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={args.size}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
    try:
        driver.get(server.url)
        ready = lambda: driver.execute_script("return document.body.dataset.ready") == "true"
        wait(ready)
        decodes = lambda: int(driver.execute_script("return document.body.dataset.decodes"))
        seed = driver.find_element(By.ID, "seed")
        seed.clear()
        seed.send_keys(str(args.seed))
        count = decodes()
        driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", seed)
        wait(lambda: decodes() > count)
        count = decodes()
        slider = driver.find_element(By.CSS_SELECTOR, f'input.latent[data-slot="{args.slot}"]')
        driver.execute_script(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));", slider, args.offset
        )
        wait(lambda: decodes() > count)
        width = driver.execute_script("return document.documentElement.scrollWidth")
        height = driver.execute_script(
            "return Math.ceil(document.querySelector('main').getBoundingClientRect().bottom) + 16"
        )
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        time.sleep(0.5)
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_bytes(base64.b64decode(shot["data"]))
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


if __name__ == "__main__":
    main()
