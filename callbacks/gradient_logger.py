"""`GradientLogger`: per-variable loss gradients on a fixed probe batch."""

from __future__ import annotations

import tensorflow as tf

from callbacks import summaries, tags
from callbacks.probe_group import SharedPass
from callbacks.probe_logger import ProbeLogger


class GradientLogger(ProbeLogger):
    """Logs the gradient of the loss on a probe batch for every trainable variable.

    Writes, into `<log_dir>/train`, for each trainable variable with
    `key = variable.path` (e.g. `dense_1/kernel`, `encoder/conv1d/kernel`):

    - histogram `gradients/<key>`: the entries of dLoss/dW,
    - scalar `gradient_norm/<key>`: its L2 norm,

    and the scalar `gradient_norm/global` over all variables. The loss is
    exactly the one `fit` minimises, on the probe: `model.compute_loss`, i.e.
    the compiled losses with their weights plus `model.losses`
    (regularisation), in inference mode (Dropout off, BatchNorm on its moving
    statistics), so the values are comparable across steps and across
    models; or, for a custom training loop, `loss_fn(model, x, y)`. For the
    gradients the optimizer applies at each step, inside the train step,
    see `AppliedGradientLogger`. A variable the loss does not depend on has a zero gradient. Logs
    happen at step 0, every `every_n_steps` optimizer steps and at the end of
    training; the value at step k describes the weights after k updates.

    Args: see `ProbeLogger`.

    Raises:
        ValueError: see `ProbeLogger`.

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[
        keras.callbacks.TensorBoard("logs/run"),
        GradientLogger("logs/run", probe=(x, y)),
    ])
    ```
    """

    def _prepare(self, model):
        self._variables = list(model.trainable_variables)

    def _tags(self):
        keys = tags.variable_keys(self._variables)
        scalar_tags = [tags.tag(tags.GRADIENT_NORM, key) for key in keys]
        return scalar_tags + [tags.GLOBAL_GRADIENT_NORM], [tags.tag(tags.GRADIENTS, key)
                                                           for key in keys]

    def _pass_needs(self):
        return {SharedPass.VARIABLE_GRADIENTS}

    def _compute(self, probe, shared):
        gradients = shared.variable_gradients
        gradient_norms = summaries.Flat.of(gradients).norms()
        return (tf.concat([gradient_norms, [tf.norm(gradient_norms)]], 0),
                summaries.histograms(gradients, self.histogram_buckets))
