"""Channel groups of a Keras functional model, and rebuilding it with channels removed (or zero ones added).

Structured pruning has to know which output channels may be removed together and which weights every
removal touches. A *group* is a set of channels that must stay aligned:

* producers (Conv2D, SeparableConv2D, Dense) create a group with their output channels;
* per-channel layers (BatchNormalization, DepthwiseConv2D) and shape-only layers (ReLU, pooling,
  dropout, padding) pass the group through unchanged;
* an Add (or another element-wise merge) ties the groups of its inputs into one: the residual blocks
  of mini_xception make the main path's last separable conv and the shortcut 1x1 conv one group;
* consumers (the next Conv2D/SeparableConv2D/Dense) lose the matching input slices; a Flatten in
  between turns channel c into the rows p*C + c of the Dense kernel.

Groups that reach the model output or touch a layer this module does not understand are fixed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from edgefer.errors import EdgeferError

PRODUCERS = {"Conv2D", "SeparableConv2D", "Dense"}
PER_CHANNEL = {"BatchNormalization", "DepthwiseConv2D"}
SHAPE_ONLY = {"ReLU", "Activation", "LeakyReLU", "ELU", "MaxPooling2D", "AveragePooling2D", "Dropout",
              "SpatialDropout2D", "GaussianNoise", "ZeroPadding2D", "Cropping2D", "GlobalAveragePooling2D",
              "GlobalMaxPooling2D", "Identity"}
ELEMENTWISE = {"Add", "Subtract", "Maximum", "Minimum", "Average", "Multiply"}


@dataclass
class Consumer:
    layer: str
    positions: int = 1        # >1 when a Flatten of `positions` spatial cells sits in between


@dataclass
class ChannelGroup:
    name: str
    width: int
    producers: list[str] = field(default_factory=list)
    followers: list[str] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)
    fixed: bool = False

    @property
    def prunable(self) -> bool:
        return not self.fixed and self.width > 1 and bool(self.producers)


@dataclass
class ChannelGraph:
    groups: dict[str, ChannelGroup]
    output_group: dict[str, str]          # producer or per-channel layer -> its group
    input_group: dict[str, str]           # consumer or per-channel layer -> the group it reads
    bn_after: dict[str, str]              # producer -> the BatchNormalization right after it, if any

    def prunable(self) -> list[ChannelGroup]:
        return [group for group in self.groups.values() if group.prunable]


class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def add(self, key: str) -> None:
        self.parent.setdefault(key, key)

    def find(self, key: str) -> str:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(b)] = self.find(a)


FIXED = "<fixed>"


def _inbound_layers(layer) -> list[str]:
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        raise EdgeferError(f"layer {layer.name!r} is used {len(nodes)} times; shared layers cannot be pruned")
    return [tensor._keras_history.operation.name for tensor in nodes[0].input_tensors]


def channel_graph(model) -> ChannelGraph:
    """Analyse `model` (a functional keras.Model) into channel groups."""
    import keras

    links = _UnionFind()
    links.add(FIXED)
    source: dict[str, tuple[str, int]] = {}     # layer -> (group key of its output, flatten positions)
    reads: dict[str, tuple[str, int]] = {}      # consumer / follower -> (group key it reads, positions)
    bn_after: dict[str, str] = {}
    producers: list[str] = []
    followers: list[str] = []
    widths: dict[str, int] = {}

    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, keras.layers.InputLayer):
            source[layer.name] = (FIXED, 1)
            continue
        inbound = [source[name] for name in _inbound_layers(layer)]
        first = inbound[0] if inbound else (FIXED, 1)
        if kind in PRODUCERS:
            reads[layer.name] = first
            links.add(layer.name)
            source[layer.name] = (layer.name, 1)
            widths[layer.name] = int(layer.units if kind == "Dense" else layer.filters)
            producers.append(layer.name)
        elif kind in PER_CHANNEL and first[1] == 1 and getattr(layer, "depth_multiplier", 1) == 1:
            reads[layer.name] = first
            followers.append(layer.name)
            source[layer.name] = first
            upstream = _inbound_layers(layer)[0]
            if kind == "BatchNormalization" and upstream in widths and upstream not in bn_after:
                bn_after[upstream] = layer.name
        elif kind in SHAPE_ONLY and first[1] == 1:
            source[layer.name] = first
        elif kind in ELEMENTWISE and all(positions == 1 for _, positions in inbound):
            for key, _ in inbound[1:]:
                links.union(first[0], key)
            source[layer.name] = first
        elif kind == "Flatten" and first[1] == 1 and len(layer.input.shape) == 4:
            height, width = layer.input.shape[1:3]
            source[layer.name] = (first[0], int(height) * int(width))
        else:  # unknown layer: whatever it touches stays as it is
            for key, _ in inbound:
                links.union(FIXED, key)
            source[layer.name] = (FIXED, 1)

    for tensor in model.outputs:
        links.union(FIXED, source[tensor._keras_history.operation.name][0])

    fixed_root = links.find(FIXED)
    groups: dict[str, ChannelGroup] = {}
    output_group: dict[str, str] = {}
    for name in producers:
        root = links.find(name)
        if root not in groups:
            groups[root] = ChannelGroup(name=name, width=widths[name], fixed=root == fixed_root)
        groups[root].producers.append(name)
        output_group[name] = root
    input_group: dict[str, str] = {}
    for name, (key, positions) in reads.items():
        root = links.find(key)
        if root not in groups or root == fixed_root:  # reads the model input, or a fixed group
            continue
        input_group[name] = root
        if name in followers:
            groups[root].followers.append(name)
            output_group[name] = root
        else:
            groups[root].consumers.append(Consumer(name, positions))
    # name groups by their first producer (stable across rebuilds), key by that name
    renamed = {group.name: group for group in groups.values()}
    key_to_name = {root: group.name for root, group in groups.items()}
    return ChannelGraph(
        groups=renamed,
        output_group={layer: key_to_name[root] for layer, root in output_group.items()},
        input_group={layer: key_to_name[root] for layer, root in input_group.items()},
        bn_after=bn_after,
    )


# --------------------------------------------------------------------------- merging before removal


@dataclass
class Merge:
    """Replace channel `drop` of `group` by alpha * channel `keep` + beta in every consumer."""

    group: str
    keep: int
    drop: int
    alpha: float
    beta: float


def _apply_merge(weights: dict[str, list[np.ndarray]], model, graph: ChannelGraph, merge: Merge) -> None:
    group = graph.groups[merge.group]
    for consumer in group.consumers:
        layer = model.get_layer(consumer.layer)
        kind = type(layer).__name__
        values = weights[consumer.layer]
        if kind == "SeparableConv2D":
            raise EdgeferError(f"cannot merge channels of {merge.group!r}: {consumer.layer} is depthwise")
        kernel = values[0]
        if kind == "Dense":
            width = group.width
            rows_keep = np.arange(consumer.positions) * width + merge.keep
            rows_drop = np.arange(consumer.positions) * width + merge.drop
            kernel[rows_keep] += merge.alpha * kernel[rows_drop]
            constant = merge.beta * kernel[rows_drop].sum(axis=0)
        else:  # Conv2D: exact away from zero-padded borders
            kernel[:, :, merge.keep, :] += merge.alpha * kernel[:, :, merge.drop, :]
            constant = merge.beta * kernel[:, :, merge.drop, :].sum(axis=(0, 1))
        if layer.use_bias:
            values[1] += constant
        elif consumer.layer in graph.bn_after:
            # no bias: the BatchNormalization right after subtracts its moving mean instead
            bn_values = weights[graph.bn_after[consumer.layer]]
            bn_values[-2] -= constant


# --------------------------------------------------------------------------- rebuild


def _take(array: np.ndarray, keep, axis: int = 0) -> np.ndarray:
    """np.take along `axis`, where an index of -1 makes a new all-zero slice (a padding channel)."""
    keep = np.asarray(keep)
    taken = np.take(array, np.maximum(keep, 0), axis=axis)
    if (keep < 0).any():
        shape = [1] * array.ndim
        shape[axis] = len(keep)
        taken = np.where((keep >= 0).reshape(shape), taken, 0).astype(array.dtype)
    return taken


def _keep_inputs(values: list[np.ndarray], index: int, keep, axis: int) -> None:
    values[index] = _take(values[index], keep, axis=axis)


def _keep_outputs(values: list[np.ndarray], kernel: int, keep) -> None:
    """The kernel's last axis and the bias right after it (if the layer has one)."""
    values[kernel] = _take(values[kernel], keep, axis=-1)
    if len(values) > kernel + 1:
        values[kernel + 1] = _take(values[kernel + 1], keep)


def _slice_layer(layer, values: list[np.ndarray], read_keep, read_positions: int, read_width: int,
                 out_keep) -> list[np.ndarray]:
    kind = type(layer).__name__
    values = list(values)
    if not values:
        return values
    if kind == "BatchNormalization":  # a padding channel gets gamma = beta = 0: it stays exactly zero
        return [_take(v, read_keep) if read_keep is not None else v for v in values]
    if kind == "DepthwiseConv2D":  # per-channel: its kernel and bias follow the channels it reads
        if read_keep is not None:
            _keep_inputs(values, 0, read_keep, axis=2)
            if len(values) > 1:
                values[1] = _take(values[1], read_keep)
        return values
    kernel = 1 if kind == "SeparableConv2D" else 0   # the weight whose last axis is the output channels
    if read_keep is not None:
        if kind == "Conv2D":
            _keep_inputs(values, 0, read_keep, axis=2)
        elif kind == "SeparableConv2D":
            multiplier = values[0].shape[-1]
            _keep_inputs(values, 0, read_keep, axis=2)
            _keep_inputs(values, 1, _expand(read_keep, multiplier, np.arange(multiplier)), axis=2)
        elif kind == "Dense":  # after a Flatten, channel c of cell p is row p * width + c
            _keep_inputs(values, 0, _expand(np.arange(read_positions), read_width, read_keep).ravel(), axis=0)
    if out_keep is not None and kind in PRODUCERS:
        _keep_outputs(values, kernel, out_keep)
    return values


def _expand(outer, stride: int, inner) -> np.ndarray:
    """Flat indices outer * stride + inner; -1 (a padding channel) in either stays -1."""
    outer, inner = np.asarray(outer)[:, None], np.asarray(inner)[None, :]
    return np.where((outer < 0) | (inner < 0), -1, outer * stride + inner).ravel()


def remove_channels(model, removals: dict[str, list[int]], merges: list[Merge] = ()):
    """A new model without the channels `removals[group]`, with weights copied (and merged) over.

    `merges` first fold each dropped channel into a kept one (its consumers' weights absorb it);
    the dropped channels of merges must also be listed in `removals`.
    """

    graph = channel_graph(model)
    keep: dict[str, np.ndarray] = {}
    for name, channels in removals.items():
        if name not in graph.groups:
            raise EdgeferError(f"no channel group {name!r}; prunable groups: "
                             f"{', '.join(g.name for g in graph.prunable())}")
        group = graph.groups[name]
        if not group.prunable:
            raise EdgeferError(f"channel group {name!r} is fixed (it feeds the output or an unsupported layer)")
        drop = set(int(c) for c in channels)
        if not drop:
            continue
        if any(c < 0 or c >= group.width for c in drop):
            raise EdgeferError(f"channel out of range for group {name!r} of width {group.width}")
        if len(drop) >= group.width:
            raise EdgeferError(f"cannot remove all {group.width} channels of group {name!r}")
        keep[name] = np.array([c for c in range(group.width) if c not in drop])

    weights = _layer_weights(model)
    for merge in merges:
        _apply_merge(weights, model, graph, merge)
    return _rebuild(model, graph, keep, weights)


def pad_channels(model, multiple: int = 8):
    """The same function with the width of every convolution group that is not fixed (see the module
    docstring) rounded up to a multiple of `multiple` by all-zero channels, or `model` itself when all
    widths already are.

    Runtimes with blocked channel layouts (ONNX Runtime's NCHWc kernels) take slow paths on other
    widths: a mini_xception at 0.9 width (7/14/29/58/115 channels, 17 % fewer parameters) ran 3x slower
    than at full width (8/16/32/64/128) in ONNX Runtime; benchmarks/onnx_widths.py.
    """
    if multiple < 1:
        raise EdgeferError(f"channel multiple must be >= 1, got {multiple}")
    graph = channel_graph(model)
    keep = {group.name: np.concatenate([np.arange(group.width), -np.ones(-group.width % multiple, int)])
            for group in graph.groups.values()
            if not group.fixed and group.producers and group.width % multiple and _convolutional(model, group)}
    if not keep:
        return model
    return _rebuild(model, graph, keep, _layer_weights(model))


def _layer_weights(model) -> dict[str, list[np.ndarray]]:
    """Writable copies of every layer's weights, by layer name."""
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers}


def _convolutional(model, group: ChannelGroup) -> bool:
    return all(type(model.get_layer(name)).__name__ != "Dense" for name in group.producers)


def _rebuild(model, graph: ChannelGraph, keep: dict[str, np.ndarray], weights: dict[str, list[np.ndarray]]):
    """A copy of `model` whose groups have the channels keep[group] (-1: a new zero channel)."""
    import keras

    config = copy.deepcopy(model.get_config())
    for entry in config["layers"]:
        entry.pop("build_config", None)
        name = entry["config"]["name"]
        group = graph.output_group.get(name)
        if group in keep and entry["class_name"] in PRODUCERS:
            entry["config"]["units" if entry["class_name"] == "Dense" else "filters"] = len(keep[group])
    pruned = keras.Model.from_config(config)

    for layer in model.layers:
        read = graph.input_group.get(layer.name)
        read_keep = keep.get(read) if read else None
        read_positions = next((c.positions for c in graph.groups[read].consumers if c.layer == layer.name), 1) \
            if read else 1
        read_width = graph.groups[read].width if read else 0
        out = graph.output_group.get(layer.name)
        out_keep = keep.get(out) if out and type(layer).__name__ in PRODUCERS else None
        values = _slice_layer(layer, weights[layer.name], read_keep, read_positions, read_width, out_keep)
        pruned.get_layer(layer.name).set_weights(values)
    return pruned
