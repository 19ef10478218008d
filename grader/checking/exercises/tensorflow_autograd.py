"""Notebook 04: the 10-20-5 network in TensorFlow 2, with GradientTape and with Keras.

The arguments reach the learner as TensorFlow tensors (``Tensor("tf", ...)``: constants, or
``tf.Variable`` when trainable) in float64, so the tape's gradients can be compared with the
NumPy oracles to 1e-5 relative. The two Keras exercises return a model; the "model" probe reads
its weights and its output on fresh inputs, and the judges below check the model's properties
(layer shapes, output = the NumPy forward pass of its own weights, training loss) rather
than equality with one particular model.

Nothing here imports TensorFlow: only the sandbox (and the learner's kernel) does.
"""
from __future__ import annotations

import numpy as np

from grader.checking import oracles
from grader.checking.spec import Call, Exercise, Mistake, NotebookSpec, Tensor
from .draws import normal, params_10_20_5
from .gradient_descent import teacher_data


def tf_args(x, y, params, trainable=True):
    """x and y as TensorFlow constants, params as tf.Variables (or constants)."""
    return (Tensor("tf", x), Tensor("tf", y),
            {name: Tensor("tf", value, trainable=trainable) for name, value in params.items()})


def regression_case(rng, n, dtype=np.float64):
    """A batch of the 10-20-5 network's inputs and targets, and random parameters."""
    return normal(rng, n, 10, dtype=dtype), normal(rng, n, 5, dtype=dtype), params_10_20_5(rng, dtype)


# --- tf_mlp_forward ---------------------------------------------------------------------

def _forward_call(rng, n, dtype=np.float64, trainable=False):
    x, _, params = regression_case(rng, n, dtype)
    return Call((Tensor("tf", x), {k: Tensor("tf", v, trainable=trainable) for k, v in params.items()}))


tf_mlp_forward = Exercise(
    name="tf_mlp_forward", points=2, title="The 10-20-5 network's forward pass in TensorFlow",
    visible_calls=lambda: [_forward_call(np.random.default_rng(40), 4)],
    hidden_calls=lambda rng: [_forward_call(rng, 16, trainable=True), _forward_call(rng, 3, np.float32)],
    expected=oracles.mlp_forward,
    atol=1e-6,
    mistakes=(
        Mistake("the hidden layer needs its activation: tf.nn.relu(tf.matmul(x, W1) + b1).",
                wrong=lambda x, p: (x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"],
                inject="def tf_mlp_forward(x, params):\n"
                       "    hidden = tf.matmul(x, params['W1']) + params['b1']\n"
                       "    return tf.matmul(hidden, params['W2']) + params['b2']\n"),
        Mistake("the output layer is linear (the loss is MSE on raw outputs): do not apply tf.nn.relu to it.",
                wrong=lambda x, p: oracles.relu(oracles.mlp_forward(x, p)),
                inject="def tf_mlp_forward(x, params):\n"
                       "    hidden = tf.nn.relu(tf.matmul(x, params['W1']) + params['b1'])\n"
                       "    return tf.nn.relu(tf.matmul(hidden, params['W2']) + params['b2'])\n"),
    ),
)

# --- tf_mse_gradients -------------------------------------------------------------------

def _scaled_gradients(factor):
    """The MSE gradients multiplied by factor(x, y): what a loss summed instead of averaged gives."""
    def wrong(x, y, params):
        return {k: v * factor(x, y) for k, v in oracles.mlp_backward(x, y, params).items()}
    return wrong


def _gradients_cell(loss_line: str) -> str:
    return ("def tf_mse_gradients(x, y, params):\n"
            "    with tf.GradientTape() as tape:\n"
            "        y_pred = tf_mlp_forward(x, params)\n"
            f"        {loss_line}\n"
            "    return tape.gradient(loss, params)\n")


def _gradients_call(rng, n):
    return Call(tf_args(*regression_case(rng, n)))


tf_mse_gradients = Exercise(
    name="tf_mse_gradients", points=2, title="Gradients with tf.GradientTape",
    visible_calls=lambda: [_gradients_call(np.random.default_rng(41), 4)],
    hidden_calls=lambda rng: [_gradients_call(rng, 16), _gradients_call(rng, 7)],
    expected=oracles.mlp_backward,
    mistakes=(
        Mistake("the loss is the mean over all elements: use tf.reduce_mean, not tf.reduce_sum "
                "(your gradients are batch x outputs times too large).",
                wrong=_scaled_gradients(lambda x, y: y.size),
                inject=_gradients_cell("loss = tf.reduce_sum(tf.square(y_pred - y))")),
        Mistake("the loss must be one number: tape.gradient of a vector of per-sample losses differentiates "
                "their sum; average over all elements with tf.reduce_mean(tf.square(y_pred - y)) "
                "(keras.losses.MSE averages only over the last axis).",
                wrong=_scaled_gradients(lambda x, y: y.shape[0]),
                inject=_gradients_cell("loss = tf.reduce_mean(tf.square(y_pred - y), axis=1)")),
    ),
)

# --- tf_train_step ----------------------------------------------------------------------

def train_step_outcome(x, y, params, lr, *, sign=-1.0, loss_after=False):
    """The outputs of one SGD step under the "arguments_after" probe: the returned loss (before
    the update) and every tensor argument afterwards (x, y unchanged; params updated).

    ``sign=+1`` is gradient ascent; ``loss_after`` returns the loss at the updated parameters.
    """
    grads = oracles.mlp_backward(x, y, params)
    updated = {k: np.asarray(v, np.float64) + sign * lr * grads[k] for k, v in params.items()}
    loss = oracles.mse_loss(oracles.mlp_forward(x, updated if loss_after else params), y)
    outcome = {"result": loss, "after.0": np.asarray(x), "after.1": np.asarray(y)}
    outcome.update({f"after.2.{k}": v for k, v in updated.items()})
    return outcome


def _train_step_call(rng, n, lr):
    return Call((*tf_args(*regression_case(rng, n)), lr), probe="arguments_after")


def _train_step_cell(update: str, returned: str = "loss") -> str:
    return ("def tf_train_step(x, y, params, lr):\n"
            "    with tf.GradientTape() as tape:\n"
            "        loss = tf.reduce_mean(tf.square(tf_mlp_forward(x, params) - y))\n"
            "    grads = tape.gradient(loss, params)\n"
            "    for name, variable in params.items():\n"
            f"        {update}\n"
            f"    return {returned}\n")


tf_train_step = Exercise(
    name="tf_train_step", points=2, title="One training step: update tf.Variables in place",
    visible_calls=lambda: [_train_step_call(np.random.default_rng(42), 4, 0.1)],
    hidden_calls=lambda rng: [_train_step_call(rng, 16, 0.05), _train_step_call(rng, 8, 0.3)],
    expected=train_step_outcome, outputs=("loss",),
    mistakes=(
        Mistake("gradient descent goes downhill: variable.assign_sub(lr * grad), not assign_add.",
                wrong=lambda x, y, p, lr: train_step_outcome(x, y, p, lr, sign=+1.0),
                inject=_train_step_cell("variable.assign_add(lr * grads[name])")),
        Mistake("return the loss computed inside the tape (before the update), not the loss after it.",
                wrong=lambda x, y, p, lr: train_step_outcome(x, y, p, lr, loss_after=True),
                inject=_train_step_cell("variable.assign_sub(lr * grads[name])",
                                        "tf.reduce_mean(tf.square(tf_mlp_forward(x, params) - y))")),
    ),
)

# --- build_keras_model and train_keras_model --------------------------------------------
#
# The "model" probe returns the model's weights as "param.0".."param.3" (Keras order: kernel,
# bias, kernel, bias) and its output on probe_args["x"] as "output". A Keras kernel has our
# shape (in, out), so the model computes exactly oracles.mlp_forward with its own weights.

KERAS_SHAPES = ((10, 20), (20,), (20, 5), (5,))
KERAS_WEIGHTS = ("the model needs two Dense layers, 10 -> 20 -> 5, after keras.Input(shape=(10,)): "
                 "expected weights of shapes (10, 20), (20,), (20, 5), (5,).")
KERAS_NO_RELU = "the hidden Dense layer needs activation='relu': without it the network is one linear map."
KERAS_OUTPUT_RELU = "the output Dense layer is linear (MSE on raw outputs): give it no activation."
KERAS_OUTPUT = ("the model's output is not relu(x @ W1 + b1) @ W2 + b2 of its own weights: "
                "use Dense(20, activation='relu') then Dense(5).")
KERAS_TARGET_MSE = 0.1  # predicting the mean scores about 1.0; correct runs end near 0.02-0.05
KERAS_TARGET = ("after training, the model's MSE on held-out data is above 0.1: compile with "
                "keras.optimizers.SGD(learning_rate=0.2) and loss='mse', and fit for 10 epochs "
                "with batch_size=32.")
KERAS_DATA_SIZE = 2048
KERAS_HELD_OUT = 512  # drawn from the same teacher as the training data, kept by the judge


def keras_network_problem(outputs: dict[str, np.ndarray], x: np.ndarray) -> str | None:
    """None when ``outputs`` (of the "model" probe) are a 10-20-5 ReLU network's, else a hint."""
    names = [f"param.{i}" for i in range(len(KERAS_SHAPES))]
    params = [k for k in outputs if k.startswith("param.")]
    if sorted(params) != names or any(outputs[k].shape != s for k, s in zip(names, KERAS_SHAPES)):
        return KERAS_WEIGHTS
    weights = dict(zip(("W1", "b1", "W2", "b2"), (outputs[k].astype(np.float64) for k in names)))
    x = np.asarray(x, np.float64)
    got = outputs.get("output", np.zeros(0)).astype(np.float64)
    candidates = [(None, oracles.mlp_forward(x, weights)),
                  (KERAS_NO_RELU, oracles.dense_forward(oracles.dense_forward(x, weights["W1"], weights["b1"]),
                                                        weights["W2"], weights["b2"])),
                  (KERAS_OUTPUT_RELU, oracles.relu(oracles.mlp_forward(x, weights)))]
    for hint, want in candidates:
        # float32 weights and inputs: allow float32 rounding, far below any wrong network's error
        if got.shape == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-5):
            return hint
    return KERAS_OUTPUT


def judge_keras_model(call: Call, outputs: dict[str, np.ndarray]) -> str | None:
    return keras_network_problem(outputs, call.probe_args["x"])


def judge_trained_keras_model(call: Call, outputs: dict[str, np.ndarray]) -> str | None:
    """The network's architecture from its weights' shapes and its output on random probe
    inputs; then the judge's own forward pass of those weights on held-out data."""
    problem = keras_network_problem(outputs, call.probe_args["x"])
    if problem:
        return problem
    weights = dict(zip(("W1", "b1", "W2", "b2"), (outputs[f"param.{i}"].astype(np.float64) for i in range(4))))
    predicted = oracles.mlp_forward(call.held_out["x"].astype(np.float64), weights)
    mse = oracles.mse_loss(predicted, call.held_out["y"].astype(np.float64))
    return None if mse < KERAS_TARGET_MSE else KERAS_TARGET


def _model_call(rng):
    return Call((), probe="model", probe_args={"x": normal(rng, 8, 10, dtype=np.float32)})


def _keras_cell(layers: str) -> str:
    return ("def build_keras_model():\n"
            "    return keras.Sequential([\n"
            "        keras.Input(shape=(10,)),\n"
            f"{layers}"
            "    ])\n")


build_keras_model = Exercise(
    name="build_keras_model", points=2, title="The 10-20-5 network as a Keras model",
    visible_calls=lambda: [_model_call(np.random.default_rng(43))],
    hidden_calls=lambda rng: [_model_call(rng)],
    judge=judge_keras_model,
    trusts="the weights and the output on random probe inputs: the shapes must be the 10-20-5 network's and the "
           "output must equal the judge's own forward pass of those weights.",
    mistakes=(
        Mistake(KERAS_NO_RELU,
                inject=_keras_cell("        keras.layers.Dense(20),\n        keras.layers.Dense(5),\n")),
        Mistake(KERAS_OUTPUT_RELU,
                inject=_keras_cell("        keras.layers.Dense(20, activation='relu'),\n"
                                   "        keras.layers.Dense(5, activation='relu'),\n")),
        Mistake(KERAS_WEIGHTS,
                inject=_keras_cell("        keras.layers.Dense(20, activation='relu', use_bias=False),\n"
                                   "        keras.layers.Dense(5),\n")),
    ),
)


def keras_training_data(rng: np.random.Generator):
    """The regression task of notebook 03 (a random 10-20-5 "teacher" plus noise 0.1), larger:
    Keras's per-epoch overhead makes more data and fewer epochs the fast way to many steps.
    Returns the training data and held-out data of the same teacher."""
    return tuple(a.astype(np.float32) for a in teacher_data(rng, n=KERAS_DATA_SIZE, held_out=KERAS_HELD_OUT))


def _training_call(rng):
    x, y, x_held_out, y_held_out = keras_training_data(rng)
    return Call((x, y), probe="model", probe_args={"x": normal(rng, 8, 10, dtype=np.float32)},
                held_out={"x": x_held_out, "y": y_held_out})


train_keras_model = Exercise(
    name="train_keras_model", points=2, title="Training the Keras model with SGD",
    visible_calls=lambda: [_training_call(np.random.default_rng(44))],
    hidden_calls=lambda rng: [_training_call(rng)],
    judge=judge_trained_keras_model,
    trusts="the weights only: their shapes are the 10-20-5 network, the model's output on random probe inputs "
           "must equal the judge's own forward pass of them, and the MSE is that forward pass's on held-out data "
           "of the same teacher, which never enters the sandbox.",
    mistakes=(
        Mistake(KERAS_TARGET,
                inject="def train_keras_model(x, y):\n    model = build_keras_model()\n"
                       "    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.001), loss='mse')\n"
                       "    model.fit(x, y, epochs=1, batch_size=32, verbose=0)\n    return model\n"),
    ),
    call_timeout=60.0,
)

NOTEBOOK = NotebookSpec(
    name="04_tensorflow",
    exercises=(tf_mlp_forward, tf_mse_gradients, tf_train_step, build_keras_model, train_keras_model),
    cell_timeout=60.0,
    notebook_timeout=180.0,
    # RLIMIT_AS counts address space, not memory used: TensorFlow reserves far more than it
    # touches (this notebook peaks at 2.4 GiB of address space for 0.7 GiB resident, measured
    # on the CPU build with 2 cores), and its thread pools, each thread with a stack and a
    # malloc arena, grow with the machine's core count. 8 GiB keeps a wide margin.
    memory_bytes=8 << 30,
)
