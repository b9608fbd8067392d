"""`make_loggers`: the four callbacks of this package, ready for `fit`."""

from __future__ import annotations

from callbacks.activation_logger import ActivationLogger
from callbacks.batch_loss_logger import BatchLossLogger
from callbacks.gradient_logger import GradientLogger
from callbacks.weight_logger import WeightLogger


def make_loggers(log_dir, probe, loss_fn=None, **probe_options) -> list:
    """Returns `BatchLossLogger` and the three probe loggers, all writing into `log_dir`.

    Args:
        log_dir: run folder; everything goes to `<log_dir>/train`.
        probe: the probe batch, as `ProbeLogger` takes it; read once and
            shared by the three probe loggers.
        loss_fn: the loss of a custom training loop, for `GradientLogger`
            and `ActivationLogger` (see `ProbeLogger`).
        **probe_options: `every_n_steps`, `histogram_buckets`, `probe_size`,
            `seed`, as `ProbeLogger` takes them.

    Returns:
        `[BatchLossLogger, GradientLogger, WeightLogger, ActivationLogger]`.

    Raises:
        ValueError: an argument is invalid, as the loggers say.

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[keras.callbacks.TensorBoard("logs/run"),
                                          *make_loggers("logs/run", probe=(x, y))])
    ```
    """
    gradients = GradientLogger(log_dir, probe, loss_fn=loss_fn, **probe_options)
    # The probe is read (a dataset iterated) once; the others take the examples kept.
    probe = gradients.probe.as_tuple()
    return [BatchLossLogger(log_dir), gradients, WeightLogger(log_dir, probe, **probe_options),
            ActivationLogger(log_dir, probe, loss_fn=loss_fn, **probe_options)]
