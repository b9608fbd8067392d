"""Keras callbacks that log what Keras 3's TensorBoard callback does not.

They import nothing from `reproduce`, so they work on any Keras model:

- `BatchLossLogger`: the true loss of every batch (`batch_loss`),
- `GradientLogger`: per-variable gradients and norms on a probe batch,
- `WeightLogger`: per-variable weights, norms and relative updates,
- `ActivationLogger`: per-layer z, f(z), f'(z), dLoss/df(z), dead and
  saturated fractions on a probe batch.
"""

from callbacks.activation_logger import ActivationLogger
from callbacks.batch_loss_logger import BatchLossLogger
from callbacks.gradient_logger import GradientLogger
from callbacks.probe_logger import ProbeLogger, make_probe
from callbacks.weight_logger import WeightLogger

__all__ = [
    "ActivationLogger",
    "BatchLossLogger",
    "GradientLogger",
    "ProbeLogger",
    "WeightLogger",
    "make_probe",
]
