"""AppliedGradientLogger where a process of its own is needed; prints JSON.

Run by tests/test_custom_training_loops.py: the logical devices must be set
before TensorFlow starts, and XLA needs op determinism off (a test of the
same process may have turned it on). Cases: a MirroredStrategy over two
logical CPUs, in float32 and mixed_float16 (a LossScaleOptimizer); an
XLA-compiled train step. For each, the logged steps and global norms, and
the norms `RecordingAdam` recorded (of the gradients summed over the
replicas).
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from callbacks import AppliedGradientLogger, StepRecorder, tags  # noqa: E402
from recording_optimizer import RecordingAdam  # noqa: E402
from reproduce.runs import events  # noqa: E402


def run(case: str, log_dir: str) -> dict:
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    policy = "mixed_float16" if case == "mirrored_mixed_float16" else "float32"
    keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 3)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    xla = case == "xla"
    strategy = (tf.distribute.get_strategy() if xla
                else tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    with strategy.scope():
        recording = RecordingAdam(4)
        optimizer = StepRecorder(keras.optimizers.LossScaleOptimizer(recording)
                                 if policy == "mixed_float16" else recording)
        model = keras.Sequential([
            keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid", dtype="float32")])
        model.compile(optimizer, "binary_crossentropy", jit_compile=xla, auto_scale_loss=False)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False,
              callbacks=[AppliedGradientLogger(log_dir, every_n_steps=2)])
    logged = events.read_events(os.path.join(log_dir, "train")).scalars[tags.GLOBAL_GRADIENT_NORM]
    return {"replicas": strategy.num_replicas_in_sync, "jit_compile": model.jit_compile,
            "steps": logged.steps.tolist(),
            "logged": logged.values.tolist(),
            "recorded": recording.norms_at(logged.steps)[:, -1].tolist()}


def main():
    with tempfile.TemporaryDirectory() as root:
        cases = {case: run(case, os.path.join(root, case))
                 for case in ("mirrored_float32", "mirrored_mixed_float16", "xla")}
    print(json.dumps(cases))


if __name__ == "__main__":
    sys.exit(main())
