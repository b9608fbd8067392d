"""C3's and C4's measurements of one linear-activation run, its saved models loaded once.

The final model is `model.keras`; the initial one is the same network with the
weights saved at step 0 (`runs.INITIAL_WEIGHTS_FILE`), used only when its
recomputed probe gradient norm matches the one logged at step 0.
"""

from __future__ import annotations

import warnings

import numpy as np

from callbacks import tags
from reproduce import datasets, runs
from reproduce.errors import ReproduceError
from reproduce.network import dense_name
from reproduce.report import networks
from reproduce.report.c3_gradients import (
    GRADIENT_BATCH_SIZE, GRADIENT_BATCHES, INPUT_SCALE, RECONSTRUCTION_RTOL)
from reproduce.report.evidence import (
    Collapse, GradientDependence, LinearRun, NormChecks, TrainingFigures)
from reproduce.report.measures import measure_loss_drop
from reproduce.runs import events


def gradient_dependence(model, split: datasets.Dataset, probe, seed: int) -> GradientDependence:
    """How dLoss/dW1 changes with the batch, the input scale and the labels.

    Args:
        model: a network in the state to measure.
        split: the regenerated data; GRADIENT_BATCHES disjoint training batches
            are drawn from it with `seed`.
        probe: the run's probe batch (x, y).
        seed: chooses the batches and the label permutation.
    """
    rng = np.random.default_rng([seed, 3])
    size = max(2, min(GRADIENT_BATCH_SIZE, len(split.x_train) // GRADIENT_BATCHES))
    order = rng.permutation(len(split.x_train))[:size * GRADIENT_BATCHES].reshape(-1, size)
    probe_x, probe_y = probe
    batches = [(split.x_train[index], split.y_train[index]) for index in order]
    batches += [probe, (INPUT_SCALE * probe_x, probe_y), (probe_x, rng.permutation(probe_y))]
    *per_batch, reference, scaled, permuted = networks.first_layer_gradients(model, batches)
    batch_gradients = np.stack([gradient.ravel() for gradient in per_batch])
    norms = np.linalg.norm(batch_gradients, axis=1)
    direct = networks.kernel_gradient(model, probe_x, probe_y)
    by_hand = networks.backprop_formula_gradient(model, probe_x, probe_y)
    reference_norm = float(np.linalg.norm(reference))
    return GradientDependence(
        batches=len(order), batch_size=size,
        batch_cosine_mean=float(networks.pairwise_cosines(batch_gradients).mean()),
        batch_cosine_min=float(networks.pairwise_cosines(batch_gradients).min()),
        batch_norm_spread=float(norms.std() / norms.mean()),
        probe_gradient_norm=reference_norm,
        inputs_doubled_change=networks.relative_change(scaled, reference),
        inputs_doubled_norm_ratio=float(np.linalg.norm(scaled)) / reference_norm,
        labels_permuted_change=networks.relative_change(permuted, reference),
        labels_permuted_norm_ratio=float(np.linalg.norm(permuted)) / reference_norm,
        formula_max_error=float(np.abs(by_hand - direct).max() / np.abs(direct).max()),
        one_pass_max_error=float(np.abs(reference - direct).max() / np.abs(direct).max()),
    )


def training_figures(run: runs.Run, context) -> TrainingFigures:
    """From the event files: how the first layer's gradient and the loss change over training."""
    train = run.events.train
    key = f"{dense_name(1)}/kernel"
    figures = {}
    norm = train.scalars.get(tags.tag(tags.GRADIENT_NORM, key))
    if norm is not None and len(norm.values):
        figures.update(gradient_norm_first=float(norm.values[0]),
                       gradient_norm_last=float(norm.values[-1]),
                       gradient_norm_ratio=float(norm.values[-1] / norm.values[0]),
                       gradient_norm_steps=[int(norm.steps[0]), int(norm.steps[-1])])
    histogram = train.histograms.get(tags.tag(tags.GRADIENTS, key))
    if histogram is not None and histogram.buckets:
        figures.update(gradient_std_first=events.summarize_histogram(histogram.buckets[0]).std,
                       gradient_std_last=events.summarize_histogram(histogram.buckets[-1]).std)
    losses = context.batch_losses(run)
    if losses is not None and len(losses) >= 2:
        figures["loss_relative_decrease"] = measure_loss_drop(losses).relative_decrease
    return TrainingFigures(val_accuracy=context.val_accuracy(run), **figures)


def initial_model(run: runs.Run, model, probe, logged_norm: float | None):
    """`model`, the run's network, set to its weights at step 0 when they check out.

    The check: its probe gradient norm of `dense_1/kernel` must equal the one
    logged at step 0. `model`'s weights are replaced (one model loaded per
    run: Keras takes ~0.2 s to load one), so measure the final state first.

    Returns:
        (model or None, recomputed step-0 gradient norm or None).
    """
    if logged_norm is None:
        return None, None
    try:
        run.load_initial_weights(model)
    except ReproduceError as error:
        warnings.warn(f"no initial model for run {run.path}: {error}", stacklevel=2)
        return None, None
    norm = float(np.linalg.norm(networks.first_layer_gradient(model, *probe)))
    if abs(norm - logged_norm) > RECONSTRUCTION_RTOL * max(logged_norm, 1e-12):
        return None, norm
    return model, norm


def collapse_figures(model, split: datasets.Dataset, logistic_accuracy: float | None,
                     network_accuracy: float | None) -> Collapse:
    """C4's figures: the collapsed affine map against the network on the validation split."""
    weight, bias = networks.collapse_linear(model)
    network = networks.network_logits(model, split.x_val)
    collapsed = split.x_val.astype(np.float64) @ weight + bias
    scale = float(np.abs(network).max())
    difference = float(np.abs(collapsed - network).max())
    return Collapse(
        max_abs_logit_difference=difference, logit_scale=scale,
        relative_logit_difference=difference / scale if scale else difference,
        rank=networks.matrix_rank(weight), full_rank=int(min(weight.shape)),
        shape=list(weight.shape),
        collapsed_accuracy=networks.logit_accuracy(collapsed, split.y_val),
        logistic_regression_accuracy=logistic_accuracy, network_accuracy=network_accuracy)


def analyse_linear_run(run: runs.Run, context) -> LinearRun:
    """C3's and C4's figures of one linear-activation run.

    Args:
        run: the run.
        context: the `report.context.Context` with its data and accuracies.
    """
    split = context.data.split(run)
    training = training_figures(run, context)
    if split is None:
        return LinearRun(run.name, run.config.dataset, training,
                         note=context.data.problems[run.name])
    try:
        model = run.load_model()
        probe = run.load_probe()
    except ReproduceError as error:
        warnings.warn(f"leaving run {run.path} out of C3 and C4: {error}", stacklevel=2)
        return LinearRun(run.name, run.config.dataset, training,
                         note="model or probe batch unreadable")
    final = gradient_dependence(model, split, probe, run.config.seed)
    collapse = collapse_figures(model, split, context.data.logistic_accuracy(run),
                                context.val_accuracy(run))
    initial, recomputed = initial_model(run, model, probe, training.gradient_norm_first)
    # The recomputed probe gradient norms against the logged ones: same network, same loss.
    checks = NormChecks(
        initial_reconstructed=initial is not None,
        step0_gradient_norm_logged=training.gradient_norm_first,
        step0_gradient_norm_recomputed=recomputed,
        last_gradient_norm_logged=training.gradient_norm_last,
        last_gradient_norm_recomputed=final.probe_gradient_norm)
    return LinearRun(
        run.name, run.config.dataset, training, final=final, checks=checks,
        initial=(gradient_dependence(initial, split, probe, run.config.seed)
                 if initial is not None else None),
        collapse=collapse)
