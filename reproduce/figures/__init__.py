"""The figures of an experiment, drawn from its run folders (nothing is retrained).

    base.py        where figures go, how they are saved (matplotlib's Agg backend), colours
    curves.py      the runs' loss curves, grouped by configuration, smoothed as TensorBoard does
    loss.py        loss drop of one configuration, the overview grid, one dataset's overlay
    boundaries.py  decision boundaries of the 2-D datasets, from the saved models
    article.py     `plot_experiment`: every figure of an article-style experiment
    beyond.py      `plot_beyond`: the figures of C6 (mode dynamics) and C7 (saturation)

Exports the names below from their modules, on first use: the report reads
the figures' paths (`base`) without loading the drawing code.
"""

from reproduce.exports import exports

__getattr__, __all__ = exports(__name__, {
    "base": ("BOUNDARY_FILE", "FIGURES_DIR", "LOSS_DROP_DIR", "OVERLAY_FILE", "OVERVIEW_FILE",
             "existing", "loss_drop_path", "overview_path", "save"),
    "curves": ("SMOOTHING", "GroupCurves", "RunCurves", "load_loss_curves", "smooth"),
    "article": ("plot_experiment",),
    "beyond": ("plot_beyond",),
})
