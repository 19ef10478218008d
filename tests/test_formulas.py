"""Every formula the site states, checked numerically in float64.

Each test first finds the formula's LaTeX on the page (so a formula edited on the
page without its check fails here), then checks it against an independent oracle:
PyTorch's autograd, central finite differences, or PyTorch's FLOP counter.
Test ids and messages name the page and the formula, e.g. "docs/algorithms.md: dW = x^T dZ".
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from page_checks import close, page_states

DOCS = Path(__file__).resolve().parents[1] / "docs"
ALGORITHMS = "docs/algorithms.md"
TRENDS = "docs/trends.md"


@pytest.fixture(autouse=True, scope="module")
def float64_by_default():
    """These checks run in float64; the default is restored after them, so that the float32
    tests of other modules (run in the same process) keep their dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def randn(gen, *shape, requires_grad=False):
    return torch.randn(*shape, generator=gen).requires_grad_(requires_grad)


# ---------------------------------------------------------------- forward propagation


def test_dense_layer_elementwise_form(gen):
    """docs/algorithms.md: Z = xW + b broadcasts b, i.e. Z_im = sum_j x_ij W_jm + b_m"""
    page_states(ALGORITHMS, r"Z_{im} = \sum_j x_{ij} W_{jm} + b_m")
    x, W, b = randn(gen, 4, 3), randn(gen, 3, 5), randn(gen, 5)
    loops = torch.tensor([[sum(x[i, j] * W[j, m] for j in range(3)) + b[m] for m in range(5)] for i in range(4)])
    close(x @ W + b, loops, f"{ALGORITHMS}: Z = xW + b")


def test_parameter_count_of_10_20_5():
    """docs/algorithms.md: the 10-20-5 network has 325 parameters"""
    page_states(ALGORITHMS, r"$10 \cdot 20 + 20 + 20 \cdot 5 + 5 = 325$")
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 5))
    assert sum(p.numel() for p in model.parameters()) == 325, f"{ALGORITHMS}: 325 parameters"


# ---------------------------------------------------------------- losses


def test_mse_definition_and_gradient(gen):
    """docs/algorithms.md: MSE = mean over all nk entries; dL/dY_hat = 2 (Y_hat - Y) / (nk)"""
    page_states(ALGORITHMS, r"L = \frac{1}{nk} \sum_{i=1}^{n} \sum_{j=1}^{k} (\hat{Y}_{ij} - Y_{ij})^2")
    page_states(ALGORITHMS, r"\frac{\partial L}{\partial \hat{Y}} = \frac{2}{nk} (\hat{Y} - Y)")
    n, k = 6, 5
    y_hat, y = randn(gen, n, k, requires_grad=True), randn(gen, n, k)
    loss = ((y_hat - y) ** 2).sum() / (n * k)
    close(loss.item(), F.mse_loss(y_hat, y).item(), f"{ALGORITHMS}: MSE equals torch.nn.MSELoss (mean)")
    loss.backward()
    close(y_hat.grad, 2 * (y_hat - y).detach() / (n * k), f"{ALGORITHMS}: dL/dY_hat = 2(Y_hat - Y)/(nk)")


def softmax_rows(z):
    e = torch.exp(z - z.max(dim=1, keepdim=True).values)
    return e / e.sum(dim=1, keepdim=True)


def test_softmax_shift_invariance(gen):
    """docs/algorithms.md: softmax(z - c) = softmax(z)"""
    page_states(ALGORITHMS, r"\mathrm{softmax}(z - c) = \mathrm{softmax}(z)")
    z, c = randn(gen, 4, 6), randn(gen, 4, 1) * 100
    plain = torch.exp(z) / torch.exp(z).sum(dim=1, keepdim=True)
    close(torch.softmax(z - c, dim=1), plain, f"{ALGORITHMS}: softmax(z - c) = softmax(z)")
    big = torch.tensor([[1000.0, 999.0, 0.0]])
    assert torch.isfinite(softmax_rows(big)).all(), f"{ALGORITHMS}: max-shifted softmax of large logits is finite"


def test_cross_entropy_two_forms(gen):
    """docs/algorithms.md: -mean log P_ic = mean(logsumexp(Z_i) - Z_ic)"""
    page_states(ALGORITHMS, r"L = -\frac{1}{n} \sum_{i=1}^{n} \log P_{i c_i}")
    page_states(ALGORITHMS, r"\Big( \log \sum_{l=1}^{k} e^{Z_{il}} - Z_{i c_i} \Big)")
    n, k = 7, 4
    z, labels = randn(gen, n, k) * 3, torch.randint(0, k, (n,), generator=gen)
    rows = torch.arange(n)
    with_probabilities = -torch.log(softmax_rows(z)[rows, labels]).mean()
    with_logits = (torch.logsumexp(z, dim=1) - z[rows, labels]).mean()
    reference = F.cross_entropy(z, labels)
    close(with_probabilities, reference, f"{ALGORITHMS}: cross-entropy, probability form")
    close(with_logits, reference, f"{ALGORITHMS}: cross-entropy, logit form")


def test_softmax_cross_entropy_gradient(gen):
    """docs/algorithms.md: dL/dZ = (P - Y) / n"""
    page_states(ALGORITHMS, r"\frac{\partial L}{\partial Z} = \frac{1}{n} (P - Y)")
    n, k = 5, 3
    z, labels = randn(gen, n, k, requires_grad=True), torch.randint(0, k, (n,), generator=gen)
    F.cross_entropy(z, labels).backward()
    y = F.one_hot(labels, k).double()
    formula = (softmax_rows(z.detach()) - y) / n
    close(z.grad, formula, f"{ALGORITHMS}: dL/dZ = (P - Y)/n")
    close(formula.sum(dim=1), torch.zeros(n), f"{ALGORITHMS}: each gradient row sums to zero", atol=1e-15)


# ---------------------------------------------------------------- backpropagation


def dense_with_upstream(gen, n=6, d=4, h=3):
    """A dense layer and a random upstream gradient G: L = sum(Z * G) has dL/dZ = G exactly."""
    x, W, b = randn(gen, n, d, requires_grad=True), randn(gen, d, h, requires_grad=True), randn(gen, h, requires_grad=True)
    dZ = randn(gen, n, h)
    ((x @ W + b) * dZ).sum().backward()
    return x, W, b, dZ


@pytest.mark.parametrize(
    "name, latex",
    [
        pytest.param(name, latex, id=f"{ALGORITHMS}: {name}")
        for name, latex in [
            ("dW = x^T dZ", r"\mathrm{d}W = x^\top \mathrm{d}Z"),
            ("db = sum over the batch of dZ", r"\mathrm{d}b = \sum_{i=1}^{n} \mathrm{d}Z_{i,:}"),
            ("dx = dZ W^T", r"\mathrm{d}x = \mathrm{d}Z \, W^\top"),
        ]
    ],
)
def test_dense_backward(gen, name, latex):
    page_states(ALGORITHMS, latex)
    x, W, b, dZ = dense_with_upstream(gen)
    formula = {
        "dW = x^T dZ": (W.grad, x.detach().T @ dZ),
        "db = sum over the batch of dZ": (b.grad, dZ.sum(dim=0)),
        "dx = dZ W^T": (x.grad, dZ @ W.detach().T),
    }[name]
    close(*formula, f"{ALGORITHMS}: {name}")


def test_source_chain_rule_as_a_contraction_over_the_indices_of_y(gen):
    """docs/algorithms.md: dL/dW_jm = sum_ik dL/dy_ik dy_ik/dW_jm, with dy_ik/dW_jm = f'(Z_ik) x_ij delta_km"""
    page_states(ALGORITHMS, r"\frac{\partial L}{\partial W_{jm}} = \sum_{i=1}^{n} \sum_{k=1}^{h} \frac{\partial L}{\partial y_{ik}} \, \frac{\partial y_{ik}}{\partial W_{jm}}")
    page_states(ALGORITHMS, r"\frac{\partial y_{ik}}{\partial W_{jm}} = f'(Z_{ik}) \, x_{ij} \, \delta_{km}")
    n, d, h = 4, 3, 5
    x, W, b, target = randn(gen, n, d), randn(gen, d, h, requires_grad=True), randn(gen, h), randn(gen, n, h)
    layer = lambda w: torch.sigmoid(x @ w + b)  # noqa: E731
    jacobian = torch.autograd.functional.jacobian(layer, W.detach())  # (n, h, d, h): dy_ik / dW_jm
    s = torch.sigmoid(x @ W.detach() + b)
    structured = torch.einsum("ik,ij,km->ikjm", s * (1 - s), x, torch.eye(h))
    close(jacobian, structured, f"{ALGORITHMS}: dy_ik/dW_jm = f'(Z_ik) x_ij delta_km")
    y = layer(W)
    loss = ((y - target) ** 2).mean()
    dL_dy = torch.autograd.grad(loss, y, retain_graph=True)[0]
    loss.backward()
    close(torch.einsum("ik,ikjm->jm", dL_dy, jacobian), W.grad, f"{ALGORITHMS}: the contraction is the chain rule")
    page_states(ALGORITHMS, r"tokens that is $7 \times 10^{13}$ numbers")
    entries = 1000 * 4096 * 4096 * 4096  # n h . d h for a 4096 x 4096 layer and 1000 tokens
    assert f"{entries:.0e}" == "7e+13", f"{ALGORITHMS}: size of the four-index Jacobian {entries:.3g}"


def test_dense_weight_gradient_index_form(gen):
    """docs/algorithms.md: dL/dW_jm = sum_i x_ij dZ_im (the sum over the batch the scalar chain rule hides)"""
    page_states(ALGORITHMS, r"\frac{\partial L}{\partial W_{jm}} = \sum_{i=1}^{n} x_{ij} \, \mathrm{d}Z_{im}")
    x, W, _, dZ = dense_with_upstream(gen)
    n, d = x.shape
    h = W.shape[1]
    loops = torch.tensor([[sum(x[i, j].item() * dZ[i, m].item() for i in range(n)) for m in range(h)] for j in range(d)])
    close(W.grad, loops, f"{ALGORITHMS}: dL/dW_jm = sum_i x_ij dZ_im")


def test_activation_backward(gen):
    """docs/algorithms.md: dZ = dH * f'(Z), ReLU' = 1[z > 0], sigma' = sigma (1 - sigma)"""
    page_states(ALGORITHMS, r"\mathrm{d}Z = \mathrm{d}H \odot f'(Z)")
    page_states(ALGORITHMS, r"\sigma'(z) = \sigma(z)\,\big(1 - \sigma(z)\big)")
    z, dH = randn(gen, 5, 4, requires_grad=True), randn(gen, 5, 4)
    (torch.relu(z) * dH).sum().backward()
    close(z.grad, dH * (z.detach() > 0), f"{ALGORITHMS}: ReLU backward = dH * 1[Z > 0]")
    z.grad = None
    (torch.sigmoid(z) * dH).sum().backward()
    s = torch.sigmoid(z.detach())
    close(z.grad, dH * s * (1 - s), f"{ALGORITHMS}: sigmoid backward = dH * sigma (1 - sigma)")
    zero = torch.zeros(1, requires_grad=True)
    torch.relu(zero).backward()
    assert zero.grad.item() == 0.0, f"{ALGORITHMS}: frameworks use ReLU'(0) = 0"


def test_backward_of_the_10_20_5_network(gen):
    """docs/algorithms.md: the whole backward pass of 10-20-5 with MSE, against autograd"""
    page_states(ALGORITHMS, r"\mathrm{d}W_2 &= H^\top \mathrm{d}\hat{Y}")
    page_states(ALGORITHMS, r"\mathrm{d}Z_1 &= \mathrm{d}H \odot \mathbb{1}[Z_1 > 0]")
    n = 8
    x, y = randn(gen, n, 10), randn(gen, n, 5)
    W1, b1 = randn(gen, 10, 20, requires_grad=True), randn(gen, 20, requires_grad=True)
    W2, b2 = randn(gen, 20, 5, requires_grad=True), randn(gen, 5, requires_grad=True)
    Z1 = x @ W1 + b1
    H = torch.relu(Z1)
    Y_hat = H @ W2 + b2
    ((Y_hat - y) ** 2).mean().backward()
    with torch.no_grad():
        dY = 2 * (Y_hat - y) / (n * 5)
        dW2, db2 = H.T @ dY, dY.sum(dim=0)
        dH = dY @ W2.T
        dZ1 = dH * (Z1 > 0)
        dW1, db1 = x.T @ dZ1, dZ1.sum(dim=0)
    for name, got, expected in [("dW2", W2.grad, dW2), ("db2", b2.grad, db2), ("dW1", W1.grad, dW1), ("db1", b1.grad, db1)]:
        close(got, expected, f"{ALGORITHMS}: 10-20-5 backward, {name}")


def mlp_loss(theta: np.ndarray, x, y) -> float:
    W1, b1, W2, b2 = np.split(theta, [200, 220, 320])
    h = np.maximum(x @ W1.reshape(10, 20) + b1, 0)
    return float(np.mean((h @ W2.reshape(20, 5) + b2 - y) ** 2))


def test_central_difference_accuracy():
    """docs/algorithms.md: central differences, error ~ eps^2; rel. error ~1e-8 or better at eps = 1e-6"""
    page_states(ALGORITHMS, r"\frac{L(\theta + \varepsilon) - L(\theta - \varepsilon)}{2\varepsilon}")
    rng = np.random.default_rng(0)
    x, y, theta = rng.normal(size=(8, 10)), rng.normal(size=(8, 5)), rng.normal(size=325) * 0.3
    t = torch.tensor(theta, requires_grad=True)
    W1, b1, W2, b2 = torch.split(t, [200, 20, 100, 5])
    h = torch.relu(torch.tensor(x) @ W1.reshape(10, 20) + b1)
    torch.mean((h @ W2.reshape(20, 5) + b2 - torch.tensor(y)) ** 2).backward()
    exact = t.grad.numpy()

    def central(eps):
        grad = np.empty_like(theta)
        for i in range(theta.size):
            step = np.zeros_like(theta)
            step[i] = eps
            grad[i] = (mlp_loss(theta + step, x, y) - mlp_loss(theta - step, x, y)) / (2 * eps)
        return grad

    numeric = central(1e-6)
    relative = np.linalg.norm(numeric - exact) / np.linalg.norm(exact)
    assert relative < 1e-7, f"{ALGORITHMS}: central difference rel. error {relative:.2g} at eps=1e-6"
    # Notebook 02's settings: any step from 1e-6 to 1e-4 passes its verdict "1e-7 or smaller: right",
    # with its error max|a - b| / max(|a| + |b|); a much smaller step loses digits to rounding (~1/eps).
    page_states(ALGORITHMS, r"any step from about $10^{-6}$ to $10^{-4}$ works in float64")
    errors = {}
    for eps in (1e-4, 1e-5, 1e-6, 1e-9):
        numeric = central(eps)
        errors[eps] = np.max(np.abs(numeric - exact)) / np.max(np.abs(numeric) + np.abs(exact))
    assert max(errors[1e-4], errors[1e-5], errors[1e-6]) < 1e-7, f"{ALGORITHMS}: notebook 02's error {errors}"
    assert errors[1e-9] > 100 * errors[1e-6], f"{ALGORITHMS}: rounding error should grow like 1/eps {errors}"
    # The error shrinks like eps^2: on a smooth function, halving eps divides it by about 4.
    f = lambda v: np.sin(v) * np.exp(v)  # noqa: E731
    df = np.cos(1.0) * np.exp(1.0) + np.sin(1.0) * np.exp(1.0)
    errors = [abs((f(1 + e) - f(1 - e)) / (2 * e) - df) for e in (1e-2, 5e-3)]
    assert 3.8 < errors[0] / errors[1] < 4.2, f"{ALGORITHMS}: error ratio {errors[0] / errors[1]:.2f}, expected ~4"


# ---------------------------------------------------------------- gradient descent


def test_gradient_step_lowers_the_loss_to_first_order(gen):
    """docs/algorithms.md: W <- W - alpha dL/dW lowers L by about alpha |dL/dW|^2 for small alpha"""
    page_states(ALGORITHMS, r"W \leftarrow W - \alpha \, \frac{\partial L}{\partial W}")
    x, y, W = randn(gen, 16, 4), randn(gen, 16, 3), randn(gen, 4, 3, requires_grad=True)
    loss = lambda w: ((x @ w - y) ** 2).mean()  # noqa: E731
    loss(W).backward()
    g, alpha = W.grad, 1e-6
    with torch.no_grad():
        decrease = loss(W) - loss(W - alpha * g)
    close(decrease / (alpha * (g ** 2).sum()), 1.0, f"{ALGORITHMS}: first-order decrease of a GD step", rtol=1e-4)


def test_full_gradient_is_mean_of_example_gradients(gen):
    """docs/algorithms.md: grad L = (1/N) sum_i grad l_i; an epoch of equal mini-batches averages to it"""
    page_states(ALGORITHMS, r"\nabla L(\theta) = \frac{1}{N} \sum_{i=1}^{N} \nabla \ell_i(\theta)")
    N, B = 64, 16
    x, y, w = randn(gen, N, 3), randn(gen, N), randn(gen, 3, requires_grad=True)

    def grad_on(rows):
        w.grad = None
        ((x[rows] @ w - y[rows]) ** 2).mean().backward()
        return w.grad.clone()

    full = grad_on(torch.arange(N))
    per_example = torch.stack([grad_on(torch.tensor([i])) for i in range(N)])
    close(per_example.mean(dim=0), full, f"{ALGORITHMS}: full gradient = mean of per-example gradients")
    order = torch.randperm(N, generator=gen)
    batches = torch.stack([grad_on(order[s:s + B]) for s in range(0, N, B)])
    close(batches.mean(dim=0), full, f"{ALGORITHMS}: mean of one epoch's mini-batch gradients = full gradient")


def test_summed_loss_scales_the_curvature_and_shrinks_the_stable_learning_rate():
    """docs/algorithms.md: with a sum over the batch, gradient and curvature grow like n; the stable rate 2/a shrinks as 1/n"""
    page_states(ALGORITHMS, r"shrinks as $1/n$")
    rng = np.random.default_rng(0)
    X1, y1 = rng.normal(size=(32, 3)), rng.normal(size=32)
    X16, y16 = np.tile(X1, (16, 1)), np.tile(y1, 16)  # the same data, a batch 16 times larger (512)
    curvature = lambda X, summed: np.linalg.eigvalsh(2 * X.T @ X / (1 if summed else len(X))).max()  # noqa: E731
    close(curvature(X16, True), 16 * curvature(X1, True), f"{ALGORITHMS}: summed loss, curvature x16")
    close(curvature(X16, False), curvature(X1, False), f"{ALGORITHMS}: mean loss, curvature unchanged")

    def diverges(X, y, alpha, summed):
        w = np.zeros(3)
        for _ in range(500):
            w -= alpha * 2 * X.T @ (X @ w - y) / (1 if summed else len(X))
            if np.abs(w).max() > 1e6:
                return True
        return False

    alpha = 0.9 * 2 / curvature(X1, True)  # stable for the summed loss on 32 examples
    assert not diverges(X1, y1, alpha, True) and diverges(X16, y16, alpha, True), f"{ALGORITHMS}: sum, 32 vs 512"
    alpha = 0.9 * 2 / curvature(X1, False)
    assert not diverges(X1, y1, alpha, False) and not diverges(X16, y16, alpha, False), f"{ALGORITHMS}: mean, 32 vs 512"


def test_least_squares_optimum_of_the_minibatch_example():
    """docs/algorithms.md: the least-squares solution of the mini-batch example has loss 0.0077"""
    page_states(ALGORITHMS, r"the least-squares solution has loss $0.0077$ on this data")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.normal(size=256)
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    assert f"{np.mean((X @ w - y) ** 2):.4f}" == "0.0077", f"{ALGORITHMS}: least-squares loss"


def test_learning_rate_stability_on_a_quadratic():
    """docs/algorithms.md: on L = a w^2 / 2, w <- (1 - alpha a) w converges iff 0 < alpha < 2/a"""
    page_states(ALGORITHMS, r"w \leftarrow (1 - \alpha a)\, w")
    page_states(ALGORITHMS, r"for $0 < \alpha < 2/a$, and fastest at $\alpha = 1/a$")
    a = 4.0
    w = torch.tensor([-2.0, 0.3, 1.5], requires_grad=True)
    (a * w ** 2 / 2).sum().backward()
    close(w.grad, a * w.detach(), f"{ALGORITHMS}: the gradient of a w^2 / 2 is a w")
    for alpha in np.linspace(0.005, 0.795, 80):  # steps of 0.01, never exactly 2/a
        alpha, w = float(alpha), 1.0
        for _ in range(1000):
            w -= alpha * (a * w)
            if abs(w) > 1e6:  # diverged
                break
        converged = abs(w) < 1e-6
        assert converged == (0 < alpha < 2 / a), f"{ALGORITHMS}: alpha={alpha:.3f}, |w|={abs(w):.3g}"
    w = 1.0 - (1 / a) * a * 1.0
    assert w == 0.0, f"{ALGORITHMS}: alpha = 1/a reaches the minimum in one step"


# ---------------------------------------------------------------- the worked example


def parse_printed(text: str) -> dict[str, np.ndarray]:
    """'name =' lines followed by NumPy's printout, into arrays."""
    values, name, numbers = {}, None, []
    for line in text.splitlines():
        header = re.fullmatch(r"(.+?) =", line.strip())
        if header:
            if name is not None:
                values[name] = np.array(numbers)
            name, numbers = header.group(1), []
        else:
            numbers += [float(v) for v in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", line)]
    values[name] = np.array(numbers)
    return values


def test_worked_example_numbers():
    """docs/algorithms.md: every number the worked example prints, recomputed with autograd"""
    page_states(ALGORITHMS, '--8<-- "algorithms/worked_example.out"')
    printed = parse_printed((DOCS / "snippets/algorithms/worked_example.out").read_text())
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    labels = torch.tensor([0, 1])
    W1 = torch.tensor([[0.5, -0.3], [0.2, 0.4]], requires_grad=True)
    b1 = torch.tensor([0.0, 0.1], requires_grad=True)
    W2 = torch.tensor([[1.0, -1.0], [0.5, -0.25]], requires_grad=True)
    b2 = torch.tensor([0.0, 0.0], requires_grad=True)
    script = (DOCS / "snippets/algorithms/worked_example.py").read_text()
    for line in ["x = np.array([[1.0, 2.0], [-1.0, 0.5]])", "W1 = np.array([[0.5, -0.3], [0.2, 0.4]])",
                 "b1 = np.array([0.0, 0.1])", "W2 = np.array([[1.0, -1.0], [0.5, -0.25]])", "lr = 0.5"]:
        assert line in script, f"{ALGORITHMS}: worked example inputs changed; update this test: {line}"

    Z1 = x @ W1 + b1
    Z1.retain_grad()
    H = torch.relu(Z1)
    H.retain_grad()
    Z2 = H @ W2 + b2
    Z2.retain_grad()
    loss = F.cross_entropy(Z2, labels)
    loss.backward()
    computed = {
        "Z1": Z1, "H": H, "Z2": Z2, "P": torch.softmax(Z2, dim=1), "loss": loss,
        "dZ2": Z2.grad, "dW2": W2.grad, "db2": b2.grad, "dH": H.grad, "dZ1": Z1.grad, "dW1": W1.grad, "db1": b1.grad,
    }
    with torch.no_grad():
        after = F.cross_entropy(torch.relu(x @ (W1 - 0.5 * W1.grad) + (b1 - 0.5 * b1.grad)) @ (W2 - 0.5 * W2.grad)
                                + (b2 - 0.5 * b2.grad), labels)
    computed["loss after one step"] = after
    assert set(printed) == set(computed), f"{ALGORITHMS}: printed {sorted(printed)}"
    for name, value in computed.items():
        # Printed with 4 decimals: agree to half a unit in the last place.
        close(printed[name], value.detach().numpy().ravel(), f"{ALGORITHMS}: worked example, {name}", rtol=0, atol=5.1e-5)


def test_worked_example_claims_in_the_text():
    """docs/algorithms.md: the numbers quoted in 'Things to check by hand' match the printout"""
    printed = parse_printed((DOCS / "snippets/algorithms/worked_example.out").read_text())
    page = (DOCS / "algorithms.md").read_text()
    for claim, value in [
        (r"\mathrm{d}H_{21} = 0.6106", printed["dH"][2]),
        (r"$-0.0477 + 0.3053 = 0.2576$", printed["db2"][0]),
        (r"lowers the loss from $0.5217$ to $0.3747$", printed["loss after one step"][0]),
    ]:
        assert claim in page, f"{ALGORITHMS}: claim no longer on the page: {claim}"
        assert f"{value:.4f}" in claim, f"{ALGORITHMS}: '{claim}' but the example prints {value:.4f}"
    assert printed["loss"][0] == 0.5217 and printed["H"][2] == 0.0


# ---------------------------------------------------------------- scale (trends page)


def test_training_flops_are_six_per_parameter_per_token():
    """docs/trends.md: C = 6ND, 2 FLOPs per parameter per token forward and 4 backward (FLOP counter)"""
    page_states(TRENDS, r"C \approx 6 N D")
    from torch.utils.flop_counter import FlopCounterMode

    n, d, h = 32, 64, 48
    x = torch.randn(n, d, requires_grad=True)
    layer = torch.nn.Linear(d, h, bias=False)
    with FlopCounterMode(display=False) as forward:
        out = layer(x)
    with FlopCounterMode(display=False) as backward:
        out.sum().backward()
    params, tokens = d * h, n
    assert forward.get_total_flops() == 2 * params * tokens, f"{TRENDS}: forward = 2 N D"
    assert backward.get_total_flops() == 4 * params * tokens, f"{TRENDS}: backward = 4 N D"


def test_scale_figures():
    """docs/trends.md: GPT-3 compute 3.15e23, 2.8 TB of Adam state, 3.5 trillion tokens; 10-20-5 needs ~3e7"""
    page_states(TRENDS, r"$C \approx 3.15 \times 10^{23}$")
    assert f"{6 * 1.75e11 * 3e11:.3g}" == "3.15e+23", f"{TRENDS}: 6 N D for GPT-3"
    page_states(TRENDS, "about 16 bytes per parameter")
    page_states(TRENDS, "needs about 2.8 TB")
    bytes_per_param = 2 + 2 + 4 + 4 + 4  # fp16 weights, fp16 grads, fp32 master, Adam m and v
    assert bytes_per_param == 16 and 16 * 175e9 == 2.8e12, f"{TRENDS}: Adam mixed-precision memory"
    page_states(TRENDS, "3.5 trillion")
    assert 20 * 175e9 == 3.5e12, f"{TRENDS}: 20 tokens per parameter"
    page_states(TRENDS, r"\approx 3 \times 10^{7}")
    c = 6 * 325 * 512 * 30
    assert 2.5e7 < c < 3.5e7, f"{TRENDS}: 10-20-5 training compute {c:.3g}"


# ---------------------------------------------------------------- language models (llm page)

LLM = "docs/llm.md"
ATTENTION = "docs/attention.md"


def page_says(page: str, words: str) -> None:
    """The page states this sentence, whatever its line breaks."""
    text = " ".join((DOCS.parent / page).read_text(encoding="utf-8").split())
    assert " ".join(words.split()) in text, f"{page}: the checked statement is no longer on the page: {words}"


def test_perplexity_is_the_exponential_of_the_mean_cross_entropy(gen):
    """docs/llm.md: PPL = exp(-1/N sum log p(x_i | x_<i)); uniform over GPT-2's 50,257 tokens: loss 10.82, PPL 50,257"""
    page_states(LLM, r"\mathrm{PPL} = \exp\Big( -\frac{1}{N} \sum_{i=1}^{N} \log p(x_i \mid x_{<i}) \Big)")
    page_says(LLM, r"a loss of $\ln 50257 \approx 10.82$ and a perplexity of exactly 50,257")
    N, V = 9, 11
    logits, targets = randn(gen, N, V), torch.randint(V, (N,), generator=gen)
    log_p = torch.log_softmax(logits, dim=-1)[torch.arange(N), targets]
    ppl = torch.exp(-log_p.sum() / N)
    close(ppl.item(), torch.exp(F.cross_entropy(logits, targets)).item(), f"{LLM}: PPL = exp(mean cross-entropy)")
    # A model that is certain of every answer has perplexity 1; uniform guessing among k tokens, k.
    assert torch.exp(F.cross_entropy(torch.eye(V)[targets] * 1e4, targets)).item() == 1.0
    uniform = F.cross_entropy(torch.zeros(3, 50257), torch.tensor([0, 17, 50256]))
    assert f"{uniform.item():.2f}" == "10.82", f"{LLM}: uniform loss over 50,257 tokens is {uniform.item():.4f}"
    assert round(torch.exp(uniform).item()) == 50257, f"{LLM}: uniform perplexity over 50,257 tokens"


def test_tokens_per_parameter_of_llama_3():
    """docs/llm.md: Chinchilla about 20; Llama 3 optimum 402B on 16.55T (about 41); 405B on 15.6T (about 39); 8B and 70B on 15T: about 1,900 and 210"""
    page_says(LLM, r"its $3.8 \times 10^{25}$ FLOPs at 402 billion parameters on 16.55 trillion tokens, about 41 tokens per parameter")
    page_says(LLM, "405-billion model, trained on about 15.6 trillion tokens (about 39 per parameter)")
    page_says(LLM, "8B and 70B models saw about 15 trillion tokens, about 1,900 and 210 tokens per parameter")
    page_says(LLM, "about 20 tokens per parameter")
    assert round(16.55e12 / 402e9) == 41, f"{LLM}: Llama 3's compute-optimal ratio"
    assert round(15.6e12 / 405e9) == 39, f"{LLM}: Llama 3 405B"
    assert round(15e12 / 8e9, -2) == 1900 and round(15e12 / 70e9, -1) == 210, f"{LLM}: Llama 3 8B and 70B"
    # The 405B run and the fitted optimum spend the same budget, C = 6ND, within a few per cent.
    for n, d in [(405e9, 15.6e12), (402e9, 16.55e12)]:
        assert abs(6 * n * d / 3.8e25 - 1) < 0.06, f"{LLM}: 6ND = {6 * n * d:.3g} for {n:.3g} parameters"
    # The ratio is not a constant: Llama 3's optimum is about twice Chinchilla's 20.
    assert 16.55e12 / 402e9 > 2 * 20 * 0.95


def test_kv_cache_with_grouped_query_attention_matches_hugging_face():
    """docs/attention.md: N_KV = 2 L T n_kv D; Llama 3 70B: 163,840 numbers, 320 KiB per token, 40 GiB at 131,072 tokens"""
    page_states(ATTENTION, r"N_{\mathrm{KV}} = 2\, L\, T\, n_{kv} D")
    page_says(ATTENTION, r"$L = 80$ layers, 64 query heads of size $D = 128$ and $n_{kv} = 8$ key-value heads")
    page_says(ATTENTION, "163,840 numbers per token, 320 KiB in 16-bit floats, and 40 GiB for a single sequence "
                         "of 128K (131,072) tokens, eight times less than with 64 key-value heads")
    from transformers import LlamaConfig, LlamaForCausalLM

    # The formula against Hugging Face's own cache, on a small grouped-query Llama.
    L, H, n_kv, D, T = 3, 8, 2, 4, 7
    small = LlamaConfig(vocab_size=50, hidden_size=H * D, intermediate_size=16, num_hidden_layers=L,
                        num_attention_heads=H, num_key_value_heads=n_kv)
    torch.manual_seed(0)
    out = LlamaForCausalLM(small).eval()(torch.randint(50, (1, T)), use_cache=True)
    cached = sum(layer.keys.numel() + layer.values.numel() for layer in out.past_key_values.layers)
    assert cached == 2 * L * T * n_kv * D, f"{ATTENTION}: Hugging Face caches {cached} numbers"

    # Llama 3 70B's configuration (its config.json), and the size of one layer's key and value projections.
    config = LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                         num_attention_heads=64, num_key_value_heads=8, vocab_size=128256)
    from transformers.models.llama.modeling_llama import LlamaAttention

    with torch.device("meta"):
        attention = LlamaAttention(config, layer_idx=0)
    per_layer = attention.k_proj.out_features + attention.v_proj.out_features
    per_token = config.num_hidden_layers * per_layer
    assert per_token == 2 * 80 * 8 * 128 == 163_840, f"{ATTENTION}: numbers per token"
    assert per_token * 2 == 320 * 2 ** 10, f"{ATTENTION}: 320 KiB per token in 16-bit floats"
    assert per_token * 2 * 131_072 == 40 * 2 ** 30, f"{ATTENTION}: 40 GiB at 131,072 tokens"
    assert 2 * 80 * 64 * 128 == 8 * per_token, f"{ATTENTION}: 64 key-value heads would cache eight times as much"
