"""The only module that touches TensorFlow's private API, each use for want of a public one.

`set_random_seed` is `keras.utils.set_random_seed` without clearing
TensorFlow's kernel cache. `tf.random.set_seed` clears the eager context's
caches (`pywrap_tfe.TFE_ContextClearCaches`) so that eager stateful random
ops start over; after that every traced function is instantiated and
optimised again on its next call, about 1 s per run of a reused model here
(`reproduce article`: 37 s instead of 51 s). The reused models' runs use no
stateful random kernel, so keeping the cache changes no result (tested bit
for bit). Keeping it means replacing that private function during the call,
so it is done only on the TensorFlow and Keras versions in `VERIFIED`, which
the tests were run on; on any other, seeding is plain
`keras.utils.set_random_seed`: the same results, slower. A test fails when
the installed versions are not in `VERIFIED`, so that an upgrade is noticed:
run the tests, then add the new versions.

`disable_op_determinism` undoes `tf.config.experimental.enable_op_determinism`,
which has no public opposite; Keras refuses XLA while determinism is on.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

# The versions whose kernel cache `set_random_seed` keeps, checked by tests/test_tf_internals.py.
VERIFIED = {"tensorflow": ("2.21.0",), "keras": ("3.15.1",)}


def installed_versions() -> dict[str, str]:
    """The versions of TensorFlow and Keras this process runs, by the names `VERIFIED` uses."""
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def keeps_kernel_cache() -> bool:
    """Whether `set_random_seed` keeps the kernel cache: verified versions, function present."""
    from tensorflow.python import pywrap_tfe

    verified = all(version in VERIFIED.get(name, ())
                   for name, version in installed_versions().items())
    return verified and hasattr(pywrap_tfe, "TFE_ContextClearCaches")


def set_random_seed(seed: int) -> None:
    """`keras.utils.set_random_seed(seed)`, keeping the kernel cache where that is verified.

    For runs on a reused model (`model_cache`); the seeds are set as by
    `keras.utils.set_random_seed` either way.
    """
    if not keeps_kernel_cache():
        keras.utils.set_random_seed(seed)
        return
    with _kernel_cache_kept():
        keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def _kernel_cache_kept():
    from tensorflow.python import pywrap_tfe

    clear_caches = pywrap_tfe.TFE_ContextClearCaches
    pywrap_tfe.TFE_ContextClearCaches = lambda handle: None
    try:
        yield
    finally:
        pywrap_tfe.TFE_ContextClearCaches = clear_caches


def disable_op_determinism() -> None:
    """Turns off what `tf.config.experimental.enable_op_determinism` turned on."""
    from tensorflow.python.framework import config

    config.disable_op_determinism()
