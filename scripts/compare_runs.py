"""Overlay the logged gradient histograms of several runs layer by layer, and tabulate them.

Run: python scripts/compare_runs.py logs/article/circles/linear-d4-w32-s0 \
         logs/article/circles/relu-d4-w32-s0
"""

import sys

from reproduce.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
