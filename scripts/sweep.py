"""Train every configuration of a sweep file (default: the article sweep), skipping completed runs.

Run: python scripts/sweep.py [SWEEP.toml] --logdir logs --activations linear relu --jobs 2
"""

import sys

from reproduce.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
