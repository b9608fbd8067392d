"""Training one run: model, fit, loggers, distribution, and the speed-ups that keep results.

    trainer.py          `train(config)`: one run, from data to a complete run folder
    models.py           `build_model`, `compile_model`: the MLP, its seeded initializers
    validation.py       `EpochValidation`: `fit`'s validation in one compiled call per epoch
    distribute.py       the tf.distribute strategy of a run, and who writes its folder
    distributed_fit.py  `fit` for the strategies where Keras's own fails
    tf_config.py        `TF_CONFIG` (a multi-worker cluster), checked before TensorFlow loads
    model_cache.py      one compiled model per trace key, reused with a fresh run's state
    tf_internals.py     the only use of TensorFlow's private API, guarded by version

Exports the names below from their modules, on first use, so that importing
a light module of this package (`tf_config`) does not load TensorFlow.
"""

from reproduce.exports import exports

__getattr__, __all__ = exports(__name__, {
    "trainer": ("RunResult", "train"),
    "models": ("build_model", "compile_model"),
    "validation": ("EpochValidation",),
    "distribute": ("make_strategy",),
    "model_cache": ("prepare_model",),
    "tf_config": ("read_tf_config",),
})
