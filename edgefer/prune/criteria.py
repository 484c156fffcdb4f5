"""Pruning criteria: which channels to remove next.

kernel: filter importance sqrt(sum w^2 / k^2) with the batch norm's scale folded in (global or per-layer
rank); zero: units whose activation is zero on every probe face; angle: pairs of units whose activations
are near-parallel or near-opposite, merged into one.
"""

from __future__ import annotations

import numpy as np

from edgefer.prune.channels import ChannelGraph, Merge, channel_graph
from edgefer.prune.config import PruneConfig, Proposal
from edgefer.scaling import scale_to_unit_range


def kernel_importance(model, graph: ChannelGraph | None = None) -> dict[str, np.ndarray]:
    """I = sqrt(1/k^2 * sum w^2) per output channel of every prunable group (BN scale folded in)."""
    graph = graph or channel_graph(model)
    importance = {}
    for group in graph.prunable():
        squares = np.zeros(group.width)
        for name in group.producers:
            per_filter = _filter_importance(model.get_layer(name))
            if name in graph.bn_after:
                per_filter = per_filter * _bn_scale(model.get_layer(graph.bn_after[name]))
            squares += per_filter ** 2
        importance[group.name] = np.sqrt(squares)
    return importance


def _filter_importance(layer) -> np.ndarray:
    kind = type(layer).__name__
    weights = layer.get_weights()
    if kind == "SeparableConv2D":
        kernel = weights[1]                       # the pointwise 1x1 filters make the output channels
    else:
        kernel = weights[0]
    area = kernel.shape[0] * kernel.shape[1] if kernel.ndim == 4 else 1
    flat = kernel.reshape(-1, kernel.shape[-1])
    return np.sqrt((flat.astype(np.float64) ** 2).sum(axis=0) / area)


def _bn_scale(layer) -> np.ndarray:
    variance = np.asarray(layer.moving_variance, np.float64)
    gamma = np.asarray(layer.gamma, np.float64) if layer.scale else np.ones_like(variance)
    return np.abs(gamma) / np.sqrt(variance + layer.epsilon)


def propose_kernel(model, graph: ChannelGraph, count: int, rank: str = "global") -> Proposal | None:
    """The `count` least important filters: anywhere (rank 'global', the study's rule) or relative to
    their own layer's mean importance (rank 'layer': every layer is thinned in proportion; raw
    importances of a 5x5 first conv and a 9,216-input dense layer are not comparable)."""
    candidates = []
    for group_name, values in kernel_importance(model, graph).items():
        scale = float(values.mean()) if rank == "layer" and values.mean() > 0 else 1.0
        candidates += [(float(v) / scale, group_name, c) for c, v in enumerate(values)]
    candidates.sort()
    removals: dict[str, list[int]] = {}
    largest = float("nan")
    for value, group_name, channel in candidates:
        chosen = removals.setdefault(group_name, [])
        if len(chosen) + 1 >= graph.groups[group_name].width:   # always leave one channel
            continue
        chosen.append(channel)
        largest = value
        if sum(map(len, removals.values())) == count:
            break
    removals = {k: v for k, v in removals.items() if v}
    return Proposal("kernel", removals, statistic=largest) if removals else None


def consumed_activations(model, graph: ChannelGraph, faces_u8: np.ndarray) -> dict[str, np.ndarray]:
    """For each prunable group whose consumers all read one tensor: that tensor as (samples, channels)."""
    import keras


    tensors, names = [], []
    for group in graph.prunable():
        inputs = {id(model.get_layer(c.layer).input) for c in group.consumers}
        if len(inputs) != 1:
            continue
        tensors.append(model.get_layer(group.consumers[0].layer).input)
        names.append(group.name)
    if not tensors:
        return {}
    probe = keras.Model(model.inputs, tensors)
    batch = 256  # whole batches only: the probe's statistics need no padded rows
    x = scale_to_unit_range(faces_u8[: (len(faces_u8) // batch) * batch or len(faces_u8)])[..., None]
    outputs = probe.predict(x, batch_size=batch, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    result = {}
    for name, output in zip(names, outputs):
        # (N, H, W, C) maps and channel-last flattened (N, P*C) rows both become (samples, C)
        result[name] = np.asarray(output, np.float64).reshape(-1, graph.groups[name].width)
    return result


def propose_zero(model, graph: ChannelGraph, faces_u8: np.ndarray, count: int) -> Proposal | None:
    removals: dict[str, list[int]] = {}
    for group_name, activations in consumed_activations(model, graph, faces_u8).items():
        peak = np.abs(activations).max(axis=0)
        dead = [int(c) for c in np.flatnonzero(peak <= 1e-6 * max(float(peak.max()), 1e-12))]
        room = graph.groups[group_name].width - 1
        if dead and room > 0:
            removals[group_name] = dead[:room]
    flat = [(g, c) for g, channels in removals.items() for c in channels][:count]
    chosen: dict[str, list[int]] = {}
    for group_name, channel in flat:
        chosen.setdefault(group_name, []).append(channel)
    return Proposal("zero", chosen, statistic=0.0) if chosen else None


def _mergeable(model, graph: ChannelGraph, group_name: str) -> bool:
    kinds = {type(model.get_layer(c.layer)).__name__ for c in graph.groups[group_name].consumers}
    return bool(kinds) and kinds <= {"Conv2D", "Dense"}


def angle_pairs(activations: np.ndarray, limit_degrees: float) -> list[tuple[float, int, int]]:
    """(extremeness in degrees, keep, drop) for pairs whose centred vectors are within `limit_degrees`
    of parallel or of opposite; the channel with the smaller spread is the one dropped."""
    centred = activations - activations.mean(axis=0)
    norms = np.linalg.norm(centred, axis=0)
    live = np.flatnonzero(norms > 1e-9 * max(float(norms.max()), 1e-12))
    if len(live) < 2:
        return []
    unit = centred[:, live] / norms[live]
    cosine = np.clip(unit.T @ unit, -1.0, 1.0)
    degrees = np.degrees(np.arccos(cosine))
    extremeness = np.minimum(degrees, 180.0 - degrees)
    rows, cols = np.triu_indices(len(live), k=1)
    close = extremeness[rows, cols] < limit_degrees
    pairs = []
    for i, j in zip(rows[close], cols[close]):
        a, b = int(live[i]), int(live[j])
        keep, drop = (a, b) if norms[a] >= norms[b] else (b, a)
        pairs.append((float(extremeness[i, j]), keep, drop))
    pairs.sort()
    return pairs


def propose_angle(model, graph: ChannelGraph, faces_u8: np.ndarray, count: int, limit_degrees: float):
    candidates = []
    activations = consumed_activations(model, graph, faces_u8)
    for group_name, values in activations.items():
        if _mergeable(model, graph, group_name):
            candidates += [(extreme, group_name, keep, drop) for extreme, keep, drop in
                           angle_pairs(values, limit_degrees)]
    candidates.sort()
    used: set[tuple[str, int]] = set()
    removals: dict[str, list[int]] = {}
    merges: list[Merge] = []
    worst = float("nan")
    for extreme, group_name, keep, drop in candidates:
        if (group_name, keep) in used or (group_name, drop) in used:
            continue
        if len(removals.get(group_name, [])) + 1 >= graph.groups[group_name].width:
            continue
        a, b = activations[group_name][:, keep], activations[group_name][:, drop]
        alpha = float(np.dot(a - a.mean(), b - b.mean()) / max(np.dot(a - a.mean(), a - a.mean()), 1e-12))
        beta = float(b.mean() - alpha * a.mean())
        merges.append(Merge(group_name, keep, drop, alpha, beta))
        removals.setdefault(group_name, []).append(drop)
        used.update({(group_name, keep), (group_name, drop)})
        worst = extreme
        if len(merges) == count:
            break
    return Proposal("angle", removals, merges, statistic=worst) if merges else None


def propose(criterion: str, model, faces_u8: np.ndarray, config: PruneConfig) -> Proposal | None:
    graph = channel_graph(model)
    if criterion == "kernel":
        return propose_kernel(model, graph, config.step, config.rank)
    if criterion == "zero":
        return propose_zero(model, graph, faces_u8, config.step)
    return propose_angle(model, graph, faces_u8, config.step, config.angle_degrees)
