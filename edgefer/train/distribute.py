"""Data-parallel training with `keras.distribution` on the JAX backend: `edgefer train --devices N|all`.

The global batch (`--batch-size`) is split evenly across the devices; the learning rate and batch size are
reported as global. Several hosts join one job through `keras.distribution.initialize` (coordinator
address, process count and this process's id: from --coordinator/--num-processes/--process-id, or the
environment Keras reads, KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and
KERAS_DISTRIBUTION_PROCESS_ID).

TensorFlow is refused for more than one device: Keras 3 breaks tf.distribute's MirroredStrategy and
MultiWorkerMirroredStrategy (keras-team/keras#21172, #20585), so edgefer does not pretend to support them.
"""

from __future__ import annotations

import contextlib
import os

from edgefer.errors import EdgeferError

MULTI_HOST_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                  "KERAS_DISTRIBUTION_PROCESS_ID")


def requested_devices(text: str | int) -> int | None:
    """'1' -> 1, 'all' -> None (every device found); anything else is a one-line error."""
    value = str(text).strip().lower()
    if value == "all":
        return None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise EdgeferError(f"--devices {text!r}: expected a number of devices >= 1, or 'all'")


def multi_host(config) -> bool:
    return bool(config.coordinator or config.num_processes or any(os.environ.get(k) for k in MULTI_HOST_ENV))


def wants_distribution(config) -> bool:
    return requested_devices(config.devices) != 1 or multi_host(config)


def check_backend(config) -> None:
    """Before any data is read: more than one device needs the JAX backend."""
    if not wants_distribution(config):
        return
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        raise EdgeferError(f"--devices {config.devices}: multi-device training needs the JAX backend "
                         f"(KERAS_BACKEND=jax; this is {backend}): TensorFlow's MirroredStrategy and "
                         "MultiWorkerMirroredStrategy are broken under Keras 3 (keras#21172, keras#20585)")


def setup(config, log) -> dict:
    """Set the Keras distribution for this run; returns what the run records (devices, kinds, batch)."""
    import keras

    if not wants_distribution(config):
        return {"devices": 1, "global_batch_size": config.batch_size, "global_lr": config.lr}
    check_backend(config)
    if multi_host(config):
        _cpu_collectives()
        keras.distribution.initialize(job_addresses=config.coordinator, num_processes=config.num_processes,
                                      process_id=config.process_id)
    found = keras.distribution.list_devices()
    wanted = requested_devices(config.devices) or len(found)
    if wanted > len(found):
        raise EdgeferError(f"--devices {config.devices}: only {len(found)} device(s) found ({', '.join(found)})")
    if config.batch_size % wanted:
        raise EdgeferError(f"--batch-size {config.batch_size}: expected a multiple of --devices {wanted} "
                         "(the global batch is split evenly)")
    devices = found[:wanted]
    import jax

    processes, index = jax.process_count(), jax.process_index()
    # each process feeds its own slice of every global batch (edgefer.train.pipeline), already sharded
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices,
                                                                        auto_shard_dataset=processes == 1))
    log(f"data parallel on {wanted} device(s) ({', '.join(devices)}): global batch {config.batch_size} "
        f"({config.batch_size // wanted} per device), global learning rate {config.lr:g}")
    return {"devices": wanted, "device_names": devices, "global_batch_size": config.batch_size,
            "global_lr": config.lr, "processes": processes, "process_id": index}


def _cpu_collectives() -> None:
    """Processes on CPUs exchange gradients over Gloo (JAX's CPU collectives; GPUs use NCCL regardless)."""
    import jax

    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, ValueError):   # an older JAX without the option
        pass


def teardown() -> None:
    """Back to one device, so later runs in the same process start clean."""
    import keras

    if keras.distribution.distribution() is not None:
        keras.distribution.set_distribution(None)


def process_index(config) -> int:
    """This process's index in a multi-host job (0 alone): process 0 alone writes the run directory."""
    value = config.process_id if config.process_id is not None else os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID")
    return int(value or 0) if multi_host(config) else 0


@contextlib.contextmanager
def locally():
    """No distribution inside: models built or loaded here live on this process alone."""
    import keras

    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


_REPLICAS: dict[int, object] = {}


@contextlib.contextmanager
def local_view(model, write_back: bool = False):
    """`model` itself on one process. On several, a replica on this process alone that holds the model's
    weights (data parallelism replicates them, so every process can read them): Keras' predict cannot gather
    outputs split across hosts, and each process then validates the same weights on the same faces, so all
    reach the same decisions (best epoch, plateau, early stop). `write_back`: what the replica learnt (batch-norm
    statistics) goes back into the model."""
    import keras

    if keras.backend.backend() != "jax" or __import__("jax").process_count() == 1:
        yield model
        return
    weights = model.get_weights()
    with locally():
        replica = _REPLICAS.get(id(model))
        if replica is None:
            replica = _REPLICAS[id(model)] = keras.models.clone_model(model)
        replica.set_weights(weights)
        yield replica
        weights = replica.get_weights() if write_back else None
    if weights is not None:
        model.set_weights(weights)
