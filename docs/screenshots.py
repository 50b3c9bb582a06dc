"""README's TensorBoard screenshots, taken by a real browser from a real sweep.

    python docs/screenshots.py SWEEP_DIR     # e.g. the folder `make run` printed

Starts TensorBoard on SWEEP_DIR and has headless Chromium (Debian's `chromium` package) save
what a user sees first: docs/tensorboard_scalars.png (the default page) and
docs/tensorboard_hparams.png (the HParams dashboard). tests/test_tensorboard.py starts its
server with serve().
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DOCS = Path(__file__).resolve().parent
PAGES = {"tensorboard_scalars.png": "", "tensorboard_hparams.png": "#hparams"}
# As root, in a closed network: no sandbox, and no background calls home (they fail, loudly).
# --disable-webgl: headless Chromium's software WebGL left the first row of charts blank;
# without WebGL TensorBoard draws them as SVG.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-webgl", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1400,900", "--virtual-time-budget=15000"]


def get(url: str, body: dict | None = None):
    """TensorBoard's JSON answer to a GET, or to a POST of `body`."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def serve(logdir: Path, runs: int) -> tuple[subprocess.Popen, str]:
    """TensorBoard on a free port, once it has read `runs` runs: (process, base URL). No
    deadline: a busy machine is slow, not broken; a server that died is."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.TemporaryFile(mode="w+")  # a pipe nobody reads could fill and stall the server
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
                             "--port", str(port), "--reload_interval", "1"],
                            stdout=subprocess.DEVNULL, stderr=log, text=True)
    base = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"TensorBoard exited: {log.read()}")
        try:
            if len(get(f"{base}/data/runs")) >= runs:
                return proc, base
        except OSError:
            pass
        time.sleep(0.2)


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit(__doc__)
    browser = shutil.which("chromium")
    if browser is None:
        sys.exit("screenshots: needs Debian's chromium (apt-get install chromium)")
    sweep = Path(sys.argv[1])
    server, base = serve(sweep, runs=len(list(sweep.glob("*/result.json"))))
    try:
        for name, page in PAGES.items():
            with tempfile.TemporaryDirectory() as profile:
                subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={DOCS / name}",
                                f"{base}/{page}"], check=True, capture_output=True)
            print(DOCS / name)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
