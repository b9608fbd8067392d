"""Run the article reproduction (what `make reproduce` runs), skipping completed runs.

Run: python scripts/reproduce_article.py --logdir logs
"""

import sys

from reproduce.cli import main

if __name__ == "__main__":
    sys.exit(main(["article", *sys.argv[1:]]))
