"""The article reproduction: the main job behind `make reproduce`."""

from __future__ import annotations

from pathlib import Path

from reproduce import runs
from reproduce.config import RunConfig

ARTICLE_CONFIGS = (
    RunConfig(dataset="moons", activation="linear"),
    RunConfig(dataset="moons", activation="relu"),
)


def run_article(logdir: str | Path) -> list[Path]:
    """Trains the article's configurations (skipping completed runs) and prints where they are."""
    from reproduce.train import train

    runs.check_writable(logdir)
    run_dirs = []
    for index, config in enumerate(ARTICLE_CONFIGS, start=1):
        path = runs.run_dir(config, logdir)
        prefix = f"[{index}/{len(ARTICLE_CONFIGS)}] {runs.run_name(config)}"
        if runs.is_complete(path):
            print(f"{prefix}  already complete, skipped", flush=True)
        else:
            result = train(config, logdir, verbose=0)
            final = result.final
            print(f"{prefix}  val_acc={final.get('val_accuracy', float('nan')):.3f}  "
                  f"{result.wall_time:.1f}s", flush=True)
        run_dirs.append(path)
    root = runs.experiment_dir(logdir, ARTICLE_CONFIGS[0].experiment)
    print(f"\nLogs: {root}\nOpen them with: tensorboard --logdir {root} --host 127.0.0.1")
    return run_dirs
