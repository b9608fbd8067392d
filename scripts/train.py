"""Train one configuration and write its run folder (config, model, probe, event files).

Run: python scripts/train.py --dataset moons --activation linear --depth 4 --width 32
"""

import sys

from reproduce.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
