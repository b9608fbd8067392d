"""TensorBoard for the run folders: the launcher, the summaries we write, our own tab.

    launcher.py         `launch(logdir)`: TensorBoard on 127.0.0.1 with nothing sampled away
    summaries.py        HParams, Custom Scalars and Images summaries of runs and experiments
    histogram_overlay/  the "Histogram overlay" tab, a TensorBoard plugin

Inside this package `import tensorboard` is still TensorBoard itself (imports
are absolute). Exports the names below from their modules, on first use.
"""

from reproduce.exports import exports

__getattr__, __all__ = exports(__name__, {
    "launcher": ("DEFAULT_HOST", "DEFAULT_PORT", "build_command", "launch"),
    "summaries": ("CUSTOM_SCALARS_DIR", "HPARAMS_CONFIG_DIR", "HPARAM_FIELDS", "RUN_HPARAMS_FILE",
                  "select_hparams", "write_experiment_summaries", "write_image_summaries",
                  "write_run_hparams"),
})
