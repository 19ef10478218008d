"""Notebook 05: the 10-20-5 network in PyTorch: tensors, autograd, nn.Module, torch.optim.SGD.

The arguments reach the learner as PyTorch tensors (``Tensor("torch", ...)``, with
``requires_grad=True`` for parameters) in float64, so autograd's gradients can be compared with
the NumPy oracles. ``torch_mse_gradients`` is read with the "torch_grads" probe (the ``.grad``
that ``backward()`` leaves on each parameter), ``torch_train_step`` with "arguments_after"
(the parameters after the in-place update), and the two modules with "model". An
``nn.Linear`` stores its weight as (out, in), the transpose of our W, and computes x @ W.T + b;
the judges account for that.

Nothing here imports PyTorch: only the sandbox (and the learner's kernel) does.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from grader.checking import oracles
from grader.checking.spec import Call, Exercise, Mistake, NotebookSpec, Tensor
from .draws import normal, standardised_digits
from .tensorflow_autograd import regression_case, train_step_outcome


def torch_args(x, y, params):
    """x and y as plain tensors, params as tensors that require gradients."""
    return (Tensor("torch", x), Tensor("torch", y),
            {name: Tensor("torch", value, trainable=True) for name, value in params.items()})


# --- torch_mlp_forward ------------------------------------------------------------------

def _forward_call(rng, n, dtype=np.float64):
    x, _, params = regression_case(rng, n, dtype)
    return Call((Tensor("torch", x), {k: Tensor("torch", v, trainable=True) for k, v in params.items()}))


torch_mlp_forward = Exercise(
    name="torch_mlp_forward", points=1, title="The 10-20-5 network's forward pass in PyTorch",
    visible_calls=lambda: [_forward_call(np.random.default_rng(50), 4)],
    hidden_calls=lambda rng: [_forward_call(rng, 16), _forward_call(rng, 3, np.float32)],
    expected=oracles.mlp_forward,
    atol=1e-6,
    mistakes=(
        Mistake("the hidden layer needs its activation: torch.relu(x @ W1 + b1).",
                wrong=lambda x, p: (x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"],
                inject="def torch_mlp_forward(x, params):\n"
                       "    return (x @ params['W1'] + params['b1']) @ params['W2'] + params['b2']\n"),
        Mistake("the output layer is linear (the loss is MSE on raw outputs): do not apply torch.relu to it.",
                wrong=lambda x, p: oracles.relu(oracles.mlp_forward(x, p)),
                inject="def torch_mlp_forward(x, params):\n"
                       "    hidden = torch.relu(x @ params['W1'] + params['b1'])\n"
                       "    return torch.relu(hidden @ params['W2'] + params['b2'])\n"),
    ),
)

# --- torch_mse_gradients ----------------------------------------------------------------
#
# Read with the "torch_grads" probe: "result" is the returned loss, "grad.2.<name>" the .grad
# of params[name] (argument 2) after the call.

def gradients_outcome(x, y, params, *, scale=1.0, backward=True):
    """The returned loss and the parameters' .grad; ``scale`` is what a summed loss multiplies."""
    outcome = {"result": scale * oracles.mse_loss(oracles.mlp_forward(x, params), y)}
    if backward:
        outcome.update({f"grad.2.{k}": scale * g for k, g in oracles.mlp_backward(x, y, params).items()})
    return outcome


def _gradients_call(rng, n):
    return Call(torch_args(*regression_case(rng, n)), probe="torch_grads")


def _gradients_cell(body: str) -> str:
    return ("def torch_mse_gradients(x, y, params):\n"
            "    y_pred = torch_mlp_forward(x, params)\n"
            + "".join(f"    {line}\n" for line in body.strip().splitlines()))


torch_mse_gradients = Exercise(
    name="torch_mse_gradients", points=2, title="Gradients with autograd: loss.backward()",
    visible_calls=lambda: [_gradients_call(np.random.default_rng(51), 4)],
    hidden_calls=lambda rng: [_gradients_call(rng, 16), _gradients_call(rng, 7)],
    expected=gradients_outcome, outputs=("loss",),
    mistakes=(
        Mistake("no gradients were computed: call loss.backward() before returning the loss; "
                "it fills params[name].grad.",
                wrong=lambda x, y, p: gradients_outcome(x, y, p, backward=False),
                inject=_gradients_cell("loss = torch.mean((y_pred - y) ** 2)\nreturn loss")),
        Mistake("the loss is the mean over all elements: use torch.mean (or F.mse_loss), not torch.sum "
                "(your loss and gradients are batch x outputs times too large).",
                wrong=lambda x, y, p: gradients_outcome(x, y, p, scale=y.size),
                inject=_gradients_cell("loss = torch.sum((y_pred - y) ** 2)\nloss.backward()\nreturn loss")),
    ),
)

# --- torch_train_step -------------------------------------------------------------------

def _train_step_call(rng, n, lr):
    return Call((*torch_args(*regression_case(rng, n)), lr), probe="arguments_after")


def _train_step_cell(body: str) -> str:
    return ("def torch_train_step(x, y, params, lr):\n"
            + "".join(f"    {line}\n" for line in body.strip().splitlines()))


_STEP = """optimizer = torch.optim.SGD(params.values(), lr=lr{options})
optimizer.zero_grad()
loss = torch.mean((torch_mlp_forward(x, params) - y) ** 2)
{update}
return {returned}"""

torch_train_step = Exercise(
    name="torch_train_step", points=2, title="One training step with torch.optim.SGD",
    visible_calls=lambda: [_train_step_call(np.random.default_rng(52), 4, 0.1)],
    hidden_calls=lambda rng: [_train_step_call(rng, 16, 0.05), _train_step_call(rng, 8, 0.3)],
    expected=train_step_outcome, outputs=("loss",),
    mistakes=(
        Mistake("the parameters did not change: call loss.backward() before optimizer.step(), which "
                "skips every parameter whose .grad is still None.",
                wrong=lambda x, y, p, lr: train_step_outcome(x, y, p, 0.0),
                inject=_train_step_cell(_STEP.format(options="", update="optimizer.step()\nloss.backward()",
                                                     returned="loss"))),
        Mistake("gradient descent goes downhill: torch.optim.SGD minimises by default; maximize=True climbs.",
                wrong=lambda x, y, p, lr: train_step_outcome(x, y, p, lr, sign=+1.0),
                inject=_train_step_cell(_STEP.format(options=", maximize=True",
                                                     update="loss.backward()\noptimizer.step()", returned="loss"))),
        Mistake("return the loss computed before optimizer.step(), not a loss computed after the update.",
                wrong=lambda x, y, p, lr: train_step_outcome(x, y, p, lr, loss_after=True),
                inject=_train_step_cell(_STEP.format(
                    options="", update="loss.backward()\noptimizer.step()",
                    returned="torch.mean((torch_mlp_forward(x, params) - y) ** 2)"))),
    ),
)

# --- make_mlp ---------------------------------------------------------------------------
#
# The "model" probe returns named_parameters() in registration order as "param.0".."param.3"
# (weight (out, in), bias, weight, bias) and the module's output on probe_args["x"].

TORCH_SHAPES = ((20, 10), (20,), (5, 20), (5,))
MODULE_PARAMETERS = ("the module needs nn.Linear(10, 20) then nn.Linear(20, 5), with biases: expected parameters of "
                     "shapes (20, 10), (20,), (5, 20), (5,) (nn.Linear stores its weight as (out, in)).")
MODULE_NO_RELU = "forward needs torch.relu between the two layers: without it the network is one linear map."
MODULE_OUTPUT_RELU = "the output layer is linear (MSE on raw outputs): return self.output(...) without relu."
MODULE_OUTPUT = ("the module's output is not relu(x @ W1.T + b1) @ W2.T + b2 of its own parameters: forward "
                 "should apply the first layer, torch.relu, then the second layer.")


def module_problem(outputs: dict[str, np.ndarray], x: np.ndarray) -> str | None:
    """None when ``outputs`` (of the "model" probe) are a 10-20-5 ReLU nn.Module's, else a hint."""
    names = [f"param.{i}" for i in range(len(TORCH_SHAPES))]
    params = [k for k in outputs if k.startswith("param.")]
    if sorted(params) != names or any(outputs[k].shape != s for k, s in zip(names, TORCH_SHAPES)):
        return MODULE_PARAMETERS
    W1, b1, W2, b2 = (outputs[k].astype(np.float64) for k in names)
    weights = {"W1": W1.T, "b1": b1, "W2": W2.T, "b2": b2}  # nn.Linear computes x @ weight.T + bias
    x = np.asarray(x, np.float64)
    got = outputs.get("output", np.zeros(0)).astype(np.float64)
    candidates = [(None, oracles.mlp_forward(x, weights)),
                  (MODULE_NO_RELU, oracles.dense_forward(oracles.dense_forward(x, weights["W1"], b1),
                                                         weights["W2"], b2)),
                  (MODULE_OUTPUT_RELU, oracles.relu(oracles.mlp_forward(x, weights)))]
    for hint, want in candidates:
        # float32 parameters and inputs: allow float32 rounding, far below any wrong network's error
        if got.shape == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-5):
            return hint
    return MODULE_OUTPUT


def _module_call(rng):
    return Call((), probe="model", probe_args={"x": normal(rng, 8, 10, dtype=np.float32)})


_MODULE_CELL = """class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(10, 20{bias})
        self.output = nn.Linear(20, 5)

    def forward(self, x):
        return {forward}


def make_mlp():
    return MLP()
"""

make_mlp = Exercise(
    name="make_mlp", points=2, title="The 10-20-5 network as an nn.Module",
    visible_calls=lambda: [_module_call(np.random.default_rng(53))],
    hidden_calls=lambda rng: [_module_call(rng)],
    judge=lambda call, outputs: module_problem(outputs, call.probe_args["x"]),
    trusts="the parameters and the output on random probe inputs: the shapes must be the 10-20-5 network's and "
           "the output must equal the judge's own forward pass of those parameters.",
    mistakes=(
        Mistake(MODULE_NO_RELU,
                inject=_MODULE_CELL.format(bias="", forward="self.output(self.hidden(x))")),
        Mistake(MODULE_OUTPUT_RELU,
                inject=_MODULE_CELL.format(bias="", forward="torch.relu(self.output(torch.relu(self.hidden(x))))")),
        Mistake(MODULE_PARAMETERS,
                inject=_MODULE_CELL.format(bias=", bias=False", forward="self.output(torch.relu(self.hidden(x)))")),
    ),
)

# --- train_digits ---------------------------------------------------------------------
#
# scikit-learn's bundled digits (nothing is downloaded), split and standardised as in
# notebook 03. The split is drawn here from the grading seed and never leaves this process:
# the learner's code receives the training images only, and its ``seed`` argument (for
# torch.manual_seed) says nothing about the split. The judge does not believe the module's
# own outputs: it reads the parameters, checks from their shapes that they are the notebook's
# 64-64-10 network, checks the module's output on random probe inputs against its own
# forward pass of those parameters (so the module is that network, with its ReLU), and
# measures the accuracy of its own forward pass on the held-out images. A "model" that looks
# answers up (nearest training image, memorised labels) has no such parameters and fails.

DIGITS_TARGET_ACCURACY = 0.95  # correct runs (the notebook's recipe) reach 0.96-0.98
DIGITS_SHAPES = ((64, 64), (64,), (10, 64), (10,))
DIGITS_OUTPUT = ("the model must be nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)), returned on the "
                 "CPU (model.cpu()): expected parameters of shapes (64, 64), (64,), (10, 64), (10,) and 10 logits "
                 "per image of shape (64,).")
DIGITS_TARGET = ("the test accuracy is below 0.95: train with torch.optim.SGD(model.parameters(), lr=0.1, "
                 "momentum=0.9) and F.cross_entropy on shuffled mini-batches of 32 for 20 epochs.")


@lru_cache(maxsize=8)
def digits_data(split_seed: int):
    """(x_train, labels_train, x_test, labels_test): a stratified 75/25 split, standardised
    with the training set's statistics, float32 images and int64 labels."""
    x_train, labels_train, x_test, labels_test = standardised_digits(split_seed)
    return x_train.astype(np.float32), labels_train.astype(np.int64), \
        x_test.astype(np.float32), labels_test.astype(np.int64)


def _digits_call(split_seed: int, seed: int, probe_rng: np.random.Generator):
    x_train, labels_train, x_test, labels_test = digits_data(split_seed)
    return Call((x_train, labels_train, seed), probe="model",
                probe_args={"x": normal(probe_rng, 8, 64, dtype=np.float32)},
                held_out={"x": x_test, "labels": labels_test})


def judge_digits(call: Call, outputs: dict[str, np.ndarray]) -> str | None:
    names = [f"param.{i}" for i in range(len(DIGITS_SHAPES))]
    if sorted(k for k in outputs if k.startswith("param.")) != names \
            or any(outputs[k].shape != s or outputs[k].dtype.kind != "f" for k, s in zip(names, DIGITS_SHAPES)):
        return DIGITS_OUTPUT
    W1, b1, W2, b2 = (outputs[k].astype(np.float64) for k in names)
    params = {"W1": W1.T, "b1": b1, "W2": W2.T, "b2": b2}  # nn.Linear computes x @ weight.T + bias
    if not all(np.all(np.isfinite(p)) for p in params.values()):
        return DIGITS_OUTPUT
    probe = np.asarray(call.probe_args["x"], np.float64)
    got = outputs.get("output", np.zeros(0)).astype(np.float64)
    want = oracles.mlp_forward(probe, params)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-4):
        return DIGITS_OUTPUT
    logits = oracles.mlp_forward(call.held_out["x"].astype(np.float64), params)
    accuracy = np.mean(np.argmax(logits, axis=1) == call.held_out["labels"])
    return None if accuracy >= DIGITS_TARGET_ACCURACY else DIGITS_TARGET


train_digits = Exercise(
    name="train_digits", points=3, title="Training a digit classifier with torch.optim.SGD",
    visible_calls=lambda: [_digits_call(0, 0, np.random.default_rng(54))],
    hidden_calls=lambda rng: [_digits_call(int(rng.integers(1, 1 << 30)), int(rng.integers(1 << 30)), rng)],
    judge=judge_digits,
    trusts="the parameters only: their shapes are the 64-64-10 network, the module's output on random probe "
           "inputs must equal the judge's own forward pass of them, and the accuracy is that forward pass's on "
           "held-out images that never enter the sandbox.",
    mistakes=(
        Mistake(DIGITS_TARGET,
                inject="def train_digits(x_train, labels_train, seed):\n    torch.manual_seed(seed)\n"
                       "    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))\n"
                       "    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)\n"
                       "    x, labels = torch.tensor(x_train), torch.tensor(labels_train)\n"
                       "    for start in range(0, 320, 32):\n"
                       "        optimizer.zero_grad()\n"
                       "        F.cross_entropy(model(x[start:start + 32]), labels[start:start + 32]).backward()\n"
                       "        optimizer.step()\n"
                       "    return model\n"),
        Mistake(DIGITS_OUTPUT,
                inject="def train_digits(x_train, labels_train, seed):\n"
                       "    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))\n"),
    ),
    call_timeout=60.0,
)

NOTEBOOK = NotebookSpec(
    name="05_pytorch",
    judge_imports=("sklearn.datasets", "sklearn.model_selection"),  # the digits (draws.standardised_digits)
    exercises=(torch_mlp_forward, torch_mse_gradients, torch_train_step, make_mlp, train_digits),
    cell_timeout=60.0,
    notebook_timeout=180.0,
    # The default 6 GiB of address space is ample: this notebook peaks at 1.0 GiB (measured).
    memory_bytes=6 << 30,
)
