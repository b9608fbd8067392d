"""`launch(logdir)`: TensorBoard on 127.0.0.1, keeping every scalar, histogram and image.

By default TensorBoard keeps 1000 scalars, 500 histograms and 10 images per
tag, sampled at random; the command built here keeps them all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reproduce.errors import ConfigError, RunNotFoundError

DEFAULT_PORT = 6006
DEFAULT_HOST = "127.0.0.1"  # loopback only: TensorBoard has no authentication
MAX_PORT = 65535
STOP_SECONDS = 10  # for TensorBoard to exit after Ctrl+C, before it is killed
# More samples per tag than any run logs, so TensorBoard samples nothing away.
# Not 0: its help says 0 keeps every sample, but the plugins then serve none
# (tensorflow/tensorboard#5550; seen here for scalars with TensorBoard 2.21).
KEEP_ALL_SAMPLES = 10**9
SAMPLES_PER_PLUGIN = ",".join(f"{plugin}={KEEP_ALL_SAMPLES}"
                              for plugin in ("scalars", "histograms", "images"))


def build_command(logdir: str | Path, port: int = DEFAULT_PORT,
                  host: str = DEFAULT_HOST) -> list[str]:
    """Returns the command line that starts TensorBoard on `logdir` with nothing sampled away."""
    return [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
            "--host", host, "--port", str(port), "--samples_per_plugin", SAMPLES_PER_PLUGIN]


def launch(logdir: str | Path, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> int:
    """Runs TensorBoard on `logdir` until it exits (Ctrl+C); returns its exit status.

    Raises:
        ConfigError: `port` is not in 1-65535, or `host` is empty.
        RunNotFoundError: `logdir` is not a folder.
    """
    if not 1 <= port <= MAX_PORT:
        raise ConfigError(f"port must be between 1 and {MAX_PORT}, got {port}")
    if not host.strip():
        raise ConfigError(f"host must be an address such as {DEFAULT_HOST}, got {host!r}")
    if not Path(logdir).is_dir():
        raise RunNotFoundError(f"no such log folder: {logdir}")
    print(f"TensorBoard on {logdir} at http://{host}:{port}/ (Ctrl+C to stop)", flush=True)
    process = subprocess.Popen(build_command(logdir, port, host))
    try:
        return process.wait()
    except KeyboardInterrupt:
        # Ctrl+C in a terminal reaches TensorBoard as well, but a signal sent to
        # this process alone does not: stop it either way.
        process.terminate()
        try:
            return process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
