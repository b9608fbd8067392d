"""`WeightLogger`: per-variable weights, their norms and relative updates."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from callbacks import summaries, tags
from callbacks.probe_logger import ProbeLogger


class WeightLogger(ProbeLogger):
    """Logs every trainable variable's values, norm and relative update.

    Works on any model, as `ProbeLogger` says; recurrent layers included.

    Writes, into `<log_dir>/train`, for each trainable variable with
    `key = variable.path`:

    - histogram `weights/<key>`,
    - scalar `weight_norm/<key>`: ||W||,
    - scalar `update_ratio/<key>`: ||W_now - W_prev|| / ||W_prev|| between
      two consecutive logs (from the second log of a `fit` on).

    The probe batch is not needed for weights; it is accepted so that all
    three loggers share one schedule and signature (an unbuilt model is built
    on it).

    Args: see `ProbeLogger`.

    Raises:
        ValueError: see `ProbeLogger`.

    Example:

    ```python
    model.fit(x, y, callbacks=[WeightLogger("logs/run", probe=(x, y), every_n_steps=50)])
    ```
    """

    _uses_loss = False

    def _prepare(self, model):
        self._variables = list(model.trainable_variables)
        size = sum(int(np.prod(variable.shape)) for variable in self._variables)
        # The previous log's weights, flattened like `summaries.Flat.of(variables)`.
        self._previous = tf.Variable(tf.zeros([size], tf.float32), trainable=False)

    def _start(self):
        self._logs_written = 0

    def _tags(self):
        keys = tags.variable_keys(self._variables)
        scalar_tags = [tags.tag(tags.WEIGHT_NORM, key) for key in keys]
        scalar_tags += [tags.tag(tags.UPDATE_RATIO, key) for key in keys]
        return scalar_tags, [tags.tag(tags.WEIGHTS, key) for key in keys]

    def _compute(self, probe, shared):
        weights = [tf.convert_to_tensor(variable) for variable in self._variables]
        flat = summaries.Flat.of(weights)
        previous = tf.convert_to_tensor(self._previous)
        ratios = tf.math.divide_no_nan(flat.with_values(flat.values - previous).norms(),
                                       flat.with_values(previous).norms())
        with tf.control_dependencies([ratios]):
            self._previous.assign(flat.values)
        return (tf.concat([flat.norms(), ratios], 0),
                summaries.histograms(weights, self.histogram_buckets))

    def _write(self, step, scalar_values, histogram_values):
        super()._write(step, scalar_values, histogram_values)
        self._logs_written += 1

    def _should_write(self, scalar_tag):
        # The first log of a fit has no previous weights to compare with.
        return self._logs_written > 0 or not scalar_tag.startswith(tags.UPDATE_RATIO + "/")
