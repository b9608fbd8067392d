"""TensorBoard tag names, defined once for the writers here and every reader."""

BATCH_LOSS = "batch_loss"
EPOCH_LOSS = "epoch_loss"
EPOCH_ACCURACY = "epoch_accuracy"

GRADIENTS = "gradients"
GRADIENT_NORM = "gradient_norm"
GLOBAL_GRADIENT_NORM = "gradient_norm/global"
WEIGHTS = "weights"
WEIGHT_NORM = "weight_norm"
UPDATE_RATIO = "update_ratio"
PREACTIVATIONS = "preactivations"
ACTIVATIONS = "activations"
ACTIVATION_DERIVATIVE = "activation_derivative"
BACKPROP_GRADIENTS = "backprop_gradients"
DEAD_FRACTION = "dead_fraction"
SATURATED_FRACTION = "saturated_fraction"


def variable_key(variable) -> str:
    """Returns `<layer>/<kernel|bias>` from a Keras variable's unique `path`."""
    return variable.path.replace(":", "_")


def tag(kind: str, key: str) -> str:
    """Returns the tag `<kind>/<key>`, e.g. `tag(GRADIENTS, "dense_1/kernel")`."""
    return f"{kind}/{key}"
