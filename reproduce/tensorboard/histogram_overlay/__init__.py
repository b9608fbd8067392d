"""TensorBoard's "Histogram overlay" tab: one histogram tag of many runs on one axis.

TensorBoard draws one histogram card per run and tag and cannot overlay runs
(tensorflow/tensorboard#6206). This dynamic plugin can: installed with this
package, it appears in any `tensorboard --logdir ...` (and `reproduce
tensorboard`) wherever histogram data exists, registered through the
`tensorboard_plugins` entry point in `setup.cfg`.

- `plugin.py`: the `TBPlugin` and its routes; reads only through TensorBoard's
  data provider, so it works on any histograms (ours, Keras's, anyone's
  `tf.summary.histogram`), and computes its table with `compare.tabulate`,
  the code behind `reproduce compare`.
- `grouping.py`: runs grouped by hparam, the x scales, the view over steps
  (pure numpy, served by the plugin).
- `static/`: the frontend, a plain ES module and CSS drawing SVG, served by
  the plugin (no build step, nothing from another host).
"""
