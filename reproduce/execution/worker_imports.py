"""What the workers need, imported once by the process they are forked from (`workers`).

Nothing here may start TensorFlow's runtime or devices.
"""

import os

from reproduce import quiet

if os.environ.get(quiet.QUIET_VARIABLE):  # the command line's choice, before TensorFlow loads
    quiet.install(start_devices=False)
os.environ.setdefault(quiet.LEVEL_VARIABLE, "2")  # workers log TensorFlow's warnings and errors

import reproduce.figures.article  # noqa: E402,F401 - matplotlib, for the figure workers
import reproduce.training.trainer  # noqa: E402,F401 - TensorFlow, Keras, our callbacks: the runs
