"""The experiments end to end: a sweep, then its TensorBoard summaries, figures and report.

    article.py  the article reproduction (`reproduce article`, `make reproduce`)
    beyond.py   beyond the article: C6 (Saxe et al.) and C7 (Glorot & Bengio) (`reproduce beyond`)

Exports the names below from their modules, on first use.
"""

from reproduce.exports import exports

__getattr__, __all__ = exports(__name__, {
    "article": ("import_analysis", "run_article", "run_sweep"),
    "beyond": ("beyond_sweeps", "run_beyond"),
})
