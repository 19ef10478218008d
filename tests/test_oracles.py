"""The oracles are right: independent proofs for every formula learners are graded against.

Two independent witnesses, in float64:

- **automatic differentiation**: PyTorch's autograd and TensorFlow's GradientTape, given only
  the forward computation written with each framework's own operations, produce the same
  gradients as ``grader.checking.oracles`` to 1e-10, for every layer and loss of the course;
- **central finite differences**: (f(x + h) - f(x - h)) / 2h along every coordinate agrees with
  every gradient oracle, including the scalar test functions handed to ``numerical_gradient``.

The forward oracles are compared with both frameworks' forward operations as well.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import tensorflow as tf
import torch
import torch.nn.functional as F

from finite_differences import central_difference

from grader.sandbox import harness
from grader.checking import oracles
from grader.checking.exercises.pytorch_autograd import gradients_outcome
from grader.checking.exercises.tensorflow_autograd import train_step_outcome

SEEDS = [0, 1, 2]
SHAPES = [(1, 1), (4, 3), (7, 5)]  # (batch, features): a single number, a small and a wider batch
AUTOGRAD_RTOL, AUTOGRAD_ATOL = 1e-10, 1e-12
FD_RTOL, FD_ATOL = 1e-6, 1e-8  # truncation O(h^2) and rounding O(eps / h) ~ 1e-10 of the values


# --- helpers ------------------------------------------------------------------------------

def away_from_zero(rng, shape, margin=0.05):
    """Normal values with |z| >= margin: a finite-difference step never crosses ReLU's kink."""
    z = rng.standard_normal(shape)
    return np.where(np.abs(z) < margin, np.copysign(margin, z), z)


def one_hot(rng, n, k):
    return np.eye(k)[rng.integers(0, k, n)]


def torch_vjp(fn, wrt, constants=(), dout=None):
    """Gradients of fn(*wrt, *constants) with respect to ``wrt``: of the output itself when it is
    a scalar, else of sum(dout * output) (a vector-Jacobian product), with torch.autograd."""
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in wrt]
    out = fn(*leaves, *(torch.tensor(c, dtype=torch.float64) for c in constants))
    upstream = None if dout is None else torch.tensor(dout, dtype=torch.float64)
    return [g.numpy() for g in torch.autograd.grad(out, leaves, grad_outputs=upstream)]


def tf_vjp(fn, wrt, constants=(), dout=None):
    """The same with tf.GradientTape and tf.Variables."""
    variables = [tf.Variable(a, dtype=tf.float64) for a in wrt]
    with tf.GradientTape() as tape:
        out = fn(*variables, *(tf.constant(c, tf.float64) for c in constants))
    upstream = None if dout is None else tf.constant(dout, tf.float64)
    return [g.numpy() for g in tape.gradient(out, variables, output_gradients=upstream)]


def assert_all_close(actual, expected, rtol, atol, what):
    assert len(actual) == len(expected), what
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert np.shape(a) == np.shape(e), f"{what}[{i}]: shape {np.shape(a)} != {np.shape(e)}"
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"{what}[{i}]")


def random_params(rng, n_in=10, n_hidden=20, n_out=5):
    return {"W1": rng.standard_normal((n_in, n_hidden)) / np.sqrt(n_in), "b1": 0.1 * rng.standard_normal(n_hidden),
            "W2": rng.standard_normal((n_hidden, n_out)) / np.sqrt(n_hidden), "b2": 0.1 * rng.standard_normal(n_out)}


def params_away_from_kinks(rng, x, margin=1e-3):
    """Random 10-20-5 parameters whose hidden pre-activations on x all avoid ReLU's kink."""
    for _ in range(100):
        params = random_params(rng, x.shape[1])
        if np.min(np.abs(x @ params["W1"] + params["b1"])) > margin:
            return params
    raise AssertionError("could not draw parameters away from ReLU's kink")


# --- the gradient oracles: one case per layer and loss --------------------------------------

@dataclass(frozen=True)
class GradientCase:
    """A gradient oracle and the forward computation it differentiates.

    ``draw(rng, n, k)`` returns (wrt, constants, dout): the arrays differentiated, the ones held
    fixed, and the upstream gradient (None for a scalar loss). ``oracle(wrt, constants, dout)``
    returns the oracle's gradients in the order of ``wrt``. ``torch_fn``/``tf_fn`` are the forward
    computation in each framework's operations; ``numpy_fn`` the same with the forward oracles
    (for finite differences).
    """

    name: str
    draw: Callable
    oracle: Callable
    torch_fn: Callable
    tf_fn: Callable
    numpy_fn: Callable


def _draw_activation(scale):
    def draw(rng, n, k):
        return [away_from_zero(rng, (n, k)) * scale], [], rng.standard_normal((n, k))
    return draw


def _draw_dense(rng, n, k):
    n_in = k + 2
    return [rng.standard_normal((n, n_in)), rng.standard_normal((n_in, k)), rng.standard_normal(k)], [], \
        rng.standard_normal((n, k))


def _draw_mse(rng, n, k):
    return [rng.standard_normal((n, k))], [rng.standard_normal((n, k))], None


def _draw_cross_entropy(rng, n, k):
    k = max(k, 2)  # at least two classes
    return [3.0 * rng.standard_normal((n, k))], [one_hot(rng, n, k)], None


def _draw_mlp(rng, n, k):
    x = rng.standard_normal((n, 10))
    params = params_away_from_kinks(rng, x)
    return [params["W1"], params["b1"], params["W2"], params["b2"]], [x, rng.standard_normal((n, 5))], None


def _mlp_params(W1, b1, W2, b2):
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def _mlp_oracle(wrt, constants, dout):
    grads = oracles.mlp_backward(constants[0], constants[1], _mlp_params(*wrt))
    return [grads["W1"], grads["b1"], grads["W2"], grads["b2"]]


GRADIENT_CASES = [
    GradientCase("relu_backward", _draw_activation(1.0),
                 oracle=lambda wrt, c, dout: [oracles.relu_backward(dout, wrt[0])],
                 torch_fn=torch.relu, tf_fn=tf.nn.relu, numpy_fn=oracles.relu),
    GradientCase("sigmoid_backward", _draw_activation(3.0),
                 oracle=lambda wrt, c, dout: [oracles.sigmoid_backward(dout, wrt[0])],
                 torch_fn=torch.sigmoid, tf_fn=tf.sigmoid, numpy_fn=oracles.sigmoid),
    GradientCase("dense_backward", _draw_dense,
                 oracle=lambda wrt, c, dout: list(oracles.dense_backward(dout, wrt[0], wrt[1])),
                 torch_fn=lambda x, W, b: torch.nn.functional.linear(x, W.T, b),
                 tf_fn=lambda x, W, b: tf.matmul(x, W) + b,
                 numpy_fn=oracles.dense_forward),
    GradientCase("mse_loss_grad", _draw_mse,
                 oracle=lambda wrt, c, dout: [oracles.mse_loss_grad(wrt[0], c[0])],
                 torch_fn=F.mse_loss,
                 tf_fn=lambda p, t: tf.reduce_mean(tf.square(p - t)),
                 numpy_fn=oracles.mse_loss),
    GradientCase("softmax_cross_entropy_grad", _draw_cross_entropy,
                 oracle=lambda wrt, c, dout: [oracles.softmax_cross_entropy_grad(wrt[0], c[0])],
                 torch_fn=F.cross_entropy,  # class probabilities as targets, mean over the batch
                 tf_fn=lambda z, y: tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z)),
                 numpy_fn=oracles.cross_entropy),
    GradientCase("mlp_backward", _draw_mlp, oracle=_mlp_oracle,
                 torch_fn=lambda W1, b1, W2, b2, x, y: F.mse_loss(torch.relu(x @ W1 + b1) @ W2 + b2, y),
                 tf_fn=lambda W1, b1, W2, b2, x, y: tf.reduce_mean(tf.square(tf.nn.relu(x @ W1 + b1) @ W2 + b2 - y)),
                 numpy_fn=lambda W1, b1, W2, b2, x, y: oracles.mse_loss(oracles.mlp_forward(x, _mlp_params(W1, b1, W2, b2)), y)),
]
CASE_IDS = [case.name for case in GRADIENT_CASES]


def test_every_gradient_oracle_has_a_case():
    covered = {case.name for case in GRADIENT_CASES}
    assert covered == {"relu_backward", "sigmoid_backward", "dense_backward", "mse_loss_grad",
                       "softmax_cross_entropy_grad", "mlp_backward"}
    assert all(callable(getattr(oracles, name)) for name in covered)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", GRADIENT_CASES, ids=CASE_IDS)
def test_gradient_oracle_matches_torch_autograd(case, shape, seed):
    wrt, constants, dout = case.draw(np.random.default_rng(seed), *shape)
    assert_all_close(torch_vjp(case.torch_fn, wrt, constants, dout), case.oracle(wrt, constants, dout),
                     AUTOGRAD_RTOL, AUTOGRAD_ATOL, f"{case.name} vs torch.autograd")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", GRADIENT_CASES, ids=CASE_IDS)
def test_gradient_oracle_matches_tf_gradient_tape(case, shape, seed):
    wrt, constants, dout = case.draw(np.random.default_rng(seed), *shape)
    assert_all_close(tf_vjp(case.tf_fn, wrt, constants, dout), case.oracle(wrt, constants, dout),
                     AUTOGRAD_RTOL, AUTOGRAD_ATOL, f"{case.name} vs tf.GradientTape")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", GRADIENT_CASES, ids=CASE_IDS)
def test_gradient_oracle_matches_finite_differences(case, shape, seed):
    wrt, constants, dout = case.draw(np.random.default_rng(seed), *shape)
    expected = case.oracle(wrt, constants, dout)
    for i in range(len(wrt)):
        def scalar(value, i=i):
            args = list(wrt)
            args[i] = value
            out = case.numpy_fn(*args, *constants)
            return float(out if dout is None else np.sum(dout * out))  # the scalar whose gradient is the VJP
        np.testing.assert_allclose(central_difference(scalar, wrt[i]), expected[i], rtol=FD_RTOL, atol=FD_ATOL,
                                   err_msg=f"{case.name}: gradient {i} vs central differences")


def test_finite_differences_would_catch_a_wrong_gradient():
    """The finite-difference witness is sharp enough to reject a factor-of-two mistake."""
    rng = np.random.default_rng(0)
    y_pred, y_true = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    numeric = central_difference(lambda p: oracles.mse_loss(p, y_true), y_pred)
    wrong = (y_pred - y_true) / y_pred.size  # the factor 2 forgotten
    assert not np.allclose(numeric, wrong, rtol=FD_RTOL, atol=FD_ATOL)
    np.testing.assert_allclose(numeric, oracles.mse_loss_grad(y_pred, y_true), rtol=FD_RTOL, atol=FD_ATOL)


# --- the forward oracles, against both frameworks' operations --------------------------------

FORWARD_CASES = {
    # name: (draw(rng, n, k) -> args, torch forward, tf forward)
    "relu": (lambda rng, n, k: [rng.standard_normal((n, k))], torch.relu, tf.nn.relu),
    "sigmoid": (lambda rng, n, k: [np.concatenate([5 * rng.standard_normal((n, k)), [[-700.0] * k, [700.0] * k]])],
                torch.sigmoid, tf.sigmoid),
    "softmax": (lambda rng, n, k: [np.concatenate([3 * rng.standard_normal((n, k)), 800 + rng.standard_normal((1, k))])],
                lambda z: torch.softmax(z, dim=1), lambda z: tf.nn.softmax(z, axis=1)),
    "dense_forward": (lambda rng, n, k: [rng.standard_normal((n, k + 2)), rng.standard_normal((k + 2, k)),
                                         rng.standard_normal(k)],
                      lambda x, W, b: torch.nn.functional.linear(x, W.T, b), lambda x, W, b: tf.matmul(x, W) + b),
    "mse_loss": (lambda rng, n, k: [rng.standard_normal((n, k)), rng.standard_normal((n, k))],
                 F.mse_loss, lambda p, t: tf.reduce_mean(tf.square(p - t))),
    "cross_entropy": (lambda rng, n, k: [np.concatenate([3 * rng.standard_normal((n, k + 1)),
                                                         [[900.0] + [-900.0] * k]]), one_hot(rng, n + 1, k + 1)],
                      F.cross_entropy,
                      lambda z, y: tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z))),
    "mlp_forward": (lambda rng, n, k: [rng.standard_normal((n, 10)), random_params(rng)],
                    lambda x, p: torch.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"],
                    lambda x, p: tf.nn.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]),
}


def _framework_call(fn, args, to_tensor):
    converted = [{k: to_tensor(v) for k, v in a.items()} if isinstance(a, dict) else to_tensor(a) for a in args]
    return np.asarray(fn(*converted))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", sorted(FORWARD_CASES))
def test_forward_oracle_matches_both_frameworks(name, shape, seed):
    draw, torch_fn, tf_fn = FORWARD_CASES[name]
    args = draw(np.random.default_rng(seed), *shape)
    expected = getattr(oracles, name)(*args)
    assert np.all(np.isfinite(expected)), f"{name}: the oracle overflowed"
    from_torch = _framework_call(torch_fn, args, lambda a: torch.tensor(a, dtype=torch.float64))
    from_tf = _framework_call(tf_fn, args, lambda a: tf.constant(a, tf.float64))
    np.testing.assert_allclose(from_torch, expected, rtol=AUTOGRAD_RTOL, atol=AUTOGRAD_ATOL, err_msg=f"{name} vs torch")
    np.testing.assert_allclose(from_tf, expected, rtol=AUTOGRAD_RTOL, atol=AUTOGRAD_ATOL, err_msg=f"{name} vs tf")


def test_every_forward_oracle_has_a_case():
    assert set(FORWARD_CASES) == {"relu", "sigmoid", "softmax", "dense_forward", "mse_loss", "cross_entropy",
                                  "mlp_forward"}


# --- the scalar test functions of numerical_gradient ----------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(3,), (2, 3), (4, 5)], ids=str)
@pytest.mark.parametrize("name", sorted(harness.SCALAR_FUNCTIONS))
def test_scalar_function_gradient_matches_finite_differences(name, shape, seed):
    rng = np.random.default_rng(seed)
    params = {"A": rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)}
    x = rng.standard_normal(shape)
    f = harness.SCALAR_FUNCTIONS[name](params)
    np.testing.assert_allclose(central_difference(f, x), oracles.scalar_function_gradient(name, params, x),
                               rtol=FD_RTOL, atol=FD_ATOL, err_msg=name)


def test_scalar_function_gradient_rejects_an_unknown_name():
    with pytest.raises(KeyError):
        oracles.scalar_function_gradient("no_such_function", {"A": np.ones(2)}, np.ones(2))


# --- the update rule, and the outcomes the framework exercises are judged against ---------------

@pytest.mark.parametrize("seed", SEEDS)
def test_sgd_step_matches_torch_optim_sgd(seed):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    for k, t in tensors.items():
        t.grad = torch.tensor(grads[k])
    torch.optim.SGD(tensors.values(), lr=0.3).step()
    expected = oracles.sgd_step(params, grads, 0.3)
    for k in params:
        np.testing.assert_allclose(tensors[k].detach().numpy(), expected[k], rtol=1e-15, atol=1e-15)


def _torch_train_step(x, y, params, lr):
    """A real step of torch.optim.SGD on the 10-20-5 network's MSE (written here, not by a learner)."""
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    optimizer = torch.optim.SGD(tensors.values(), lr=lr)
    loss = F.mse_loss(torch.relu(torch.tensor(x) @ tensors["W1"] + tensors["b1"]) @ tensors["W2"] + tensors["b2"],
                      torch.tensor(y))
    loss.backward()
    grads = {k: t.grad.numpy().copy() for k, t in tensors.items()}
    optimizer.step()
    return loss.item(), grads, {k: t.detach().numpy() for k, t in tensors.items()}


@pytest.mark.parametrize("seed", SEEDS)
def test_train_step_and_gradient_outcomes_match_a_real_torch_step(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((6, 10)), rng.standard_normal((6, 5))
    params = params_away_from_kinks(rng, x)
    loss, grads, updated = _torch_train_step(x, y, params, 0.2)

    step = train_step_outcome(x, y, params, 0.2)
    assert sorted(step) == sorted(["result", "after.0", "after.1"] + [f"after.2.{k}" for k in params])
    np.testing.assert_allclose(step["result"], loss, rtol=1e-12)
    np.testing.assert_array_equal(step["after.0"], x)
    for k in params:
        np.testing.assert_allclose(step[f"after.2.{k}"], updated[k], rtol=1e-10, atol=1e-12)

    gradients = gradients_outcome(x, y, params)
    np.testing.assert_allclose(gradients["result"], loss, rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(gradients[f"grad.2.{k}"], grads[k], rtol=1e-10, atol=1e-12)
