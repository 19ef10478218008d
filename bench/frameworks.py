"""NumPy against PyTorch and TensorFlow: time per epoch of the same MLP, trained the same way.

The course teaches the forward and backward pass in NumPy before handing the work to a
framework; this measures what that costs. Two networks:

- the document's 10-20-5 network (dense, ReLU, dense; MSE) on generated regression data;
- a 64-128-10 softmax classifier (cross-entropy) on scikit-learn's digits (shipped with
  scikit-learn: nothing is downloaded).

Every implementation starts from the same float32 weights and sees the same minibatches in
the same order, with plain SGD: the NumPy reference (vectorised forward, backward and
update, below), PyTorch (autograd, in-place update) and TensorFlow (a ``tf.function``-
compiled train step with ``GradientTape``), on the CPU, and on the GPU when one is present.
After one warm-up epoch (compilation, first allocations), each repeat times a few epochs;
the median per epoch is reported. The final losses must agree: the three compute one thing.

    python -m bench.frameworks [--quick] [--epochs N] [--repeats N] [--batch N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bench.__main__ import CannotRun, print_table, report_cannot_run

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
NUMPY_TARGET = 1.5  # the NumPy reference within 1.5 times PyTorch's CPU time per epoch
LOSS_AGREEMENT = 1e-3  # relative difference of the final losses that float32 rounding explains


@dataclass
class Task:
    """A network and its data: inputs, targets, initial weights, the batches of every epoch."""

    name: str
    loss: str                     # "mse" or "cross_entropy"
    x: np.ndarray                 # (n, inputs) float32
    y: np.ndarray                 # (n, outputs) float32: targets, or one-hot labels
    params: dict[str, np.ndarray]  # W1, b1, W2, b2, float32
    lr: float
    batches: list[list[np.ndarray]]  # per epoch, the index arrays of its minibatches


def _init(rng, sizes: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """He-initialised weights (for ReLU), zero biases, float32."""
    n_in, n_hidden, n_out = sizes
    return {"W1": (rng.standard_normal((n_in, n_hidden)) * np.sqrt(2 / n_in)).astype(np.float32),
            "b1": np.zeros(n_hidden, np.float32),
            "W2": (rng.standard_normal((n_hidden, n_out)) * np.sqrt(2 / n_hidden)).astype(np.float32),
            "b2": np.zeros(n_out, np.float32)}


def _batches(rng, n: int, batch: int, epochs: int) -> list[list[np.ndarray]]:
    return [np.array_split(order, range(batch, n, batch)) for order in (rng.permutation(n) for _ in range(epochs))]


def regression_task(samples: int, batch: int, epochs: int, seed: int = 0) -> Task:
    """The 10-20-5 network learning a random "teacher" network of the same shape, plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, 10)).astype(np.float32)
    teacher = _init(rng, (10, 20, 5))
    y = np.maximum(x @ teacher["W1"] + teacher["b1"], 0) @ teacher["W2"] + teacher["b2"]
    y = (y + 0.1 * rng.standard_normal(y.shape)).astype(np.float32)
    return Task("10-20-5 MSE, generated data", "mse", x, y, _init(rng, (10, 20, 5)), 0.05,
                _batches(rng, samples, batch, epochs))


def digits_task(batch: int, epochs: int, seed: int = 0, samples: int | None = None) -> Task:
    """The 64-128-10 softmax classifier on scikit-learn's 1797 8x8 digits, standardised."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data[:samples].astype(np.float64)
    x = ((x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[digits.target[:samples]]
    rng = np.random.default_rng(seed)
    return Task(f"64-128-10 softmax, digits ({len(x)} images)", "cross_entropy", x, y, _init(rng, (64, 128, 10)),
                0.1, _batches(rng, len(x), batch, epochs))


# --- the three implementations: each returns train(epoch_batches) -> last loss -------------

def numpy_trainer(task: Task) -> Callable[[list[np.ndarray]], float]:
    """The reference: one vectorised forward, backward and SGD step per minibatch, float32."""
    p = {k: v.copy() for k, v in task.params.items()}
    x_all, y_all, lr = task.x, task.y, np.float32(task.lr)

    def step(x, y) -> float:
        z1 = x @ p["W1"] + p["b1"]
        h = np.maximum(z1, 0)
        out = h @ p["W2"] + p["b2"]
        if task.loss == "mse":
            diff = out - y
            loss = float(np.mean(diff * diff))
            dout = diff * np.float32(2 / diff.size)
        else:  # softmax cross-entropy from logits, mean over the batch
            shifted = out - out.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            total = exp.sum(axis=1, keepdims=True)
            loss = float(np.mean(np.log(total[:, 0]) - (shifted * y).sum(axis=1)))
            dout = (exp / total - y) * np.float32(1 / len(x))
        dh = dout @ p["W2"].T
        dz1 = dh * (z1 > 0)
        grads = {"W2": h.T @ dout, "b2": dout.sum(axis=0), "W1": x.T @ dz1, "b1": dz1.sum(axis=0)}
        for name, grad in grads.items():
            p[name] -= lr * grad
        return loss

    def train(batches) -> float:
        loss = 0.0
        for index in batches:
            loss = step(x_all[index], y_all[index])
        return loss
    return train


def torch_trainer(task: Task, device: str = "cpu") -> Callable[[list[np.ndarray]], float]:
    import torch

    p = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in task.params.items()}
    x_all, y_all = torch.tensor(task.x, device=device), torch.tensor(task.y, device=device)
    batches_on_device: dict[int, list] = {}

    def step(x, y):
        out = torch.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        if task.loss == "mse":
            loss = torch.mean((out - y) ** 2)
        else:
            loss = torch.nn.functional.cross_entropy(out, y)  # y one-hot: probabilities as targets
        grads = torch.autograd.grad(loss, list(p.values()))
        with torch.no_grad():
            for value, grad in zip(p.values(), grads):
                value.sub_(task.lr * grad)
        return loss

    def train(batches) -> float:
        key = id(batches)
        if key not in batches_on_device:  # index tensors made once, like the NumPy index arrays
            batches_on_device[key] = [torch.as_tensor(i, device=device) for i in batches]
        loss = None
        for index in batches_on_device[key]:
            loss = step(x_all[index], y_all[index])
        return float(loss.detach())
    return train


def tf_trainer(task: Task, device: str = "/CPU:0") -> Callable[[list[np.ndarray]], float]:
    import tensorflow as tf

    with tf.device(device):
        p = {k: tf.Variable(v) for k, v in task.params.items()}
        x_all, y_all = tf.constant(task.x), tf.constant(task.y)
    lr = tf.constant(task.lr, tf.float32)

    @tf.function
    def step(index):
        x, y = tf.gather(x_all, index), tf.gather(y_all, index)
        with tf.GradientTape() as tape:
            out = tf.nn.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
            if task.loss == "mse":
                loss = tf.reduce_mean(tf.square(out - y))
            else:
                loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=out))
        grads = tape.gradient(loss, list(p.values()))
        for value, grad in zip(p.values(), grads):
            value.assign_sub(lr * grad)
        return loss

    batches_on_device: dict[int, list] = {}

    def train(batches) -> float:
        key = id(batches)
        with tf.device(device):
            if key not in batches_on_device:
                batches_on_device[key] = [tf.constant(i.astype(np.int32)) for i in batches]
            loss = None
            for index in batches_on_device[key]:
                loss = step(index)
        return float(loss)
    return train


# --- timing ---------------------------------------------------------------------------------

@dataclass
class Timing:
    framework: str
    device: str
    seconds_per_epoch: float
    final_loss: float


def time_trainer(framework: str, device: str, make: Callable[[], Callable], task: Task, epochs: int,
                 repeats: int, sync: Callable[[], None] = lambda: None) -> Timing:
    """Warm up on epoch 0, then ``repeats`` fresh runs of ``epochs`` epochs; median seconds per epoch.

    Every repeat starts from the initial weights, so every run's final loss is the same number.
    """
    per_epoch, loss = [], float("nan")
    for _ in range(repeats):
        train = make()
        train(task.batches[0])
        sync()
        started = time.perf_counter()
        for epoch in range(1, epochs + 1):
            loss = train(task.batches[epoch])
        sync()
        per_epoch.append((time.perf_counter() - started) / epochs)
    return Timing(framework, device, statistics.median(per_epoch), loss)


TRAINERS = {"NumPy": numpy_trainer, "PyTorch": torch_trainer, "TensorFlow": tf_trainer}
CPU = {"NumPy": "cpu", "PyTorch": "cpu", "TensorFlow": "/CPU:0"}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def make_tasks(samples: int, batch: int, epochs: int, quick: bool) -> list[Task]:
    """The two networks and their data; ``epochs`` timed epochs plus the warm-up epoch."""
    return [regression_task(samples, batch, epochs + 1),
            digits_task(batch, epochs + 1, samples=256 if quick else None)]


def _limit_threads(framework: str, threads: int) -> None:
    if framework == "PyTorch":
        import torch
        torch.set_num_threads(threads)
    elif framework == "TensorFlow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _gpu_of(framework: str) -> tuple[str, str] | None:
    """(device to use, its name) when ``framework`` sees a GPU."""
    if framework == "PyTorch":
        import torch
        return ("cuda", torch.cuda.get_device_name(0)) if torch.cuda.is_available() else None
    if framework == "TensorFlow":
        import tensorflow as tf
        listed = tf.config.list_physical_devices("GPU")
        return ("/GPU:0", listed[0].name) if listed else None
    return None


def _time_framework(framework: str, task_args: tuple, epochs: int, repeats: int, threads: int) -> list[list[Timing]]:
    """In a fresh process: every task on the CPU, then on the GPU if the framework sees one."""
    _limit_threads(framework, threads)
    tasks = make_tasks(*task_args)
    timings = [[time_trainer(framework, "CPU", lambda task=task: TRAINERS[framework](task), task, epochs, repeats)]
               for task in tasks]
    gpu = _gpu_of(framework)
    if gpu is not None:
        device, name = gpu
        sync = lambda: None  # noqa: E731 (TensorFlow's float(loss) already waits for the device)
        if framework == "PyTorch":
            import torch
            sync = torch.cuda.synchronize
        for task, rows in zip(tasks, timings):
            rows.append(time_trainer(framework, f"GPU ({name})", lambda task=task: TRAINERS[framework](task, device),
                                     task, epochs, repeats, sync))
    return timings


def time_alone(framework: str, task_args: tuple, epochs: int, repeats: int, threads: int) -> list[list[Timing]]:
    """Time one framework in a fresh process of its own (per task: CPU, then GPU if any).

    PyTorch and TensorFlow in one process fight over their thread pools (with both loaded,
    PyTorch ran 6 times slower here), and neither should pay for the other's import.
    The tasks are rebuilt there from the same seed: the same data, weights and batches.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_time_framework, framework, task_args, epochs, repeats, threads).result()
        except ImportError as error:
            raise CannotRun(f"{framework} is needed ({error}): pip install -e '.[tensorflow,torch]'") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.frameworks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny data, 1 epoch, 1 repeat")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per repeat (after one warm-up epoch)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the median is reported")
    parser.add_argument("--batch", type=int, default=32, help="minibatch size, the same for every framework")
    parser.add_argument("--samples", type=int, default=4096, help="samples of the generated regression data")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for every framework (default 1: "
                        "these networks are too small to gain from more, and a shared machine makes spinning "
                        "thread pools wait for each other)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.samples = 1, 1, 256
    title = f"NumPy vs PyTorch vs TensorFlow: time per epoch (batch {args.batch}, float32, SGD)"
    for variable in THREAD_VARIABLES:  # read by NumPy's BLAS and the frameworks as the spawned processes start
        os.environ[variable] = str(args.threads)
    task_args = (args.samples, args.batch, args.epochs, args.quick)
    tasks = make_tasks(*task_args)
    by_framework, notes = {}, []
    try:
        for framework in TRAINERS:
            try:
                by_framework[framework] = time_alone(framework, task_args, args.epochs, args.repeats, args.threads)
            except CannotRun as error:
                if framework != "TensorFlow":  # NumPy and the PyTorch reference are needed for the ratios
                    raise
                notes.append(f"TensorFlow skipped: {error}")
    except CannotRun as error:
        return report_cannot_run(title, error)
    rows = [("network", "framework", "device", "ms/epoch", "vs PyTorch CPU", "final loss")]
    ratios = []
    for index, task in enumerate(tasks):
        timings = [t for f in by_framework for t in by_framework[f][index]]
        reference = by_framework["PyTorch"][index][0]
        ratios.append((task.name, by_framework["NumPy"][index][0].seconds_per_epoch / reference.seconds_per_epoch))
        for t in timings:
            rows.append((task.name, t.framework, t.device, f"{t.seconds_per_epoch * 1000:.1f}",
                         f"{t.seconds_per_epoch / reference.seconds_per_epoch:.2f}x", f"{t.final_loss:.5f}"))
        losses = [t.final_loss for t in timings]
        spread = (max(losses) - min(losses)) / max(abs(min(losses)), 1e-12)
        notes.append(f"{task.name}: final losses agree to {spread:.1e} (relative)"
                     + ("" if spread <= LOSS_AGREEMENT else ": TOO FAR APART, the implementations disagree"))
    gpu = sorted({t.device for f in by_framework for per_task in by_framework[f] for t in per_task} - {"CPU"})
    notes.append(f"{args.epochs} timed epoch(s) after 1 warm-up, median of {args.repeats} repeat(s); "
                 f"{len(tasks[0].batches[0])} and {len(tasks[1].batches[0])} minibatches per epoch; "
                 f"{args.threads} CPU thread(s) each, each framework in a fresh process; "
                 f"GPU: {', '.join(d.removeprefix('GPU (').removesuffix(')') for d in gpu) if gpu else 'none on this machine'}")
    for name, ratio in ratios:
        notes.append(f"NumPy / PyTorch CPU, {name}: {ratio:.2f}x "
                     f"(target <= {NUMPY_TARGET}x: {'met' if ratio <= NUMPY_TARGET else 'missed'})")
    print_table(title, rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
