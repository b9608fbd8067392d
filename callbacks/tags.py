"""TensorBoard tag names, defined once for the writers here and every reader."""

BATCH_LOSS = "batch_loss"
EPOCH_LOSS = "epoch_loss"
EPOCH_ACCURACY = "epoch_accuracy"

GRADIENTS = "gradients"
GRADIENT_NORM = "gradient_norm"
GLOBAL = "global"  # the key of a norm over all variables
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
MODE_STRENGTH = "mode_strength"  # ModeStrengthLogger: u_αᵀ W v_α per mode


def variable_key(variable) -> str:
    """Returns `<layer>/<kernel|bias>` from a Keras variable's unique `path`."""
    return variable.path.replace(":", "_")


def variable_keys(variables) -> list[str]:
    """`variable_key` of each variable; a path seen before gets `_2`, `_3`, ... appended."""
    return unique([variable_key(variable) for variable in variables])


def unique(keys) -> list[str]:
    """`keys` with repeats told apart by a suffix: `a, a, b` gives `a, a_2, b`."""
    seen, result = {}, []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        result.append(key if seen[key] == 1 else f"{key}_{seen[key]}")
    return result


def scoped(scope: str, key: str) -> str:
    """`<scope>/<key>`: an optimizer's name before a key, once (`key` if it starts with it)."""
    if not scope or key.startswith(scope + "/"):
        return key
    return f"{scope}/{key}"


def tag(kind: str, key: str) -> str:
    """Returns the tag `<kind>/<key>`, e.g. `tag(GRADIENTS, "dense_1/kernel")`."""
    return f"{kind}/{key}"


def mode_name(strength: float) -> str:
    """The name of the mode of strength `strength` in `mode_strength/<name>`: `s=5`, `s=0.5`."""
    return f"s={strength:g}"
