"""Keras callbacks that log what Keras 3's TensorBoard callback does not.

They import nothing from `reproduce`, so they work on any Keras model:

- `BatchLossLogger`: the true loss of every batch (`batch_loss`),
- `EpochLogger`: the epoch scalars of Keras's `TensorBoard` callback, faster,
- `GradientLogger`: per-variable gradients and norms on a probe batch,
- `AppliedGradientLogger`: the gradients the optimizers apply, from inside
  any train step (custom ones, GANs with several optimizers),
- `WeightLogger`: per-variable weights, norms and relative updates,
- `ActivationLogger`: per-layer z, f(z), f'(z), dLoss/df(z), dead and
  saturated fractions on a probe batch,
- `make_loggers`: all four, sharing one probe,
- `ModeStrengthLogger`: u_αᵀ W v_α of chosen modes of a Dense network's
  collapsed map, at every step (Saxe et al. 2014),
- `StepRecorder`: the optimizer wrapper through which `BatchLossLogger`,
  `ModeStrengthLogger` and `AppliedGradientLogger` see every train step;
  compile with `optimizer=StepRecorder(your_optimizer)`.

The classes are imported on first use, so that `callbacks.tags` (used by the
readers) does not pull in TensorFlow.
"""

import importlib

_MODULES = {
    "ActivationLogger": "callbacks.activation_logger",
    "AppliedGradientLogger": "callbacks.applied_gradient_logger",
    "BatchLossLogger": "callbacks.batch_loss_logger",
    "EpochLogger": "callbacks.epoch_logger",
    "GradientLogger": "callbacks.gradient_logger",
    "ProbeLogger": "callbacks.probe_logger",
    "WeightLogger": "callbacks.weight_logger",
    "ModeStrengthLogger": "callbacks.mode_strength_logger",
    "StepRecorder": "callbacks.step_recorder",
    "make_loggers": "callbacks.loggers",
    "make_probe": "callbacks.probe",
}

__all__ = sorted(_MODULES)


def __getattr__(name):
    if name not in _MODULES:
        raise AttributeError(f"module 'callbacks' has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)


def __dir__():
    return sorted([*globals(), *__all__])
