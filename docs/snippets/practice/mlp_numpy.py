import numpy as np

# Data: the document never defines X_train; we generate a regression task.
rng = np.random.default_rng(0)
X_train = rng.normal(size=(512, 10)).astype(np.float32)
teacher = (rng.normal(size=(10, 5)) / np.sqrt(10)).astype(np.float32)
y_train = np.tanh(X_train @ teacher)  # a smooth non-linear target, (512, 5)

# Model 10-20-5: dense, ReLU, dense. He initialisation keeps the ReLU layer's
# output scale near 1 (the document's random_normal with std 1 does not).
input_size, hidden_size, output_size = 10, 20, 5
learning_rate, epochs, batch_size = 0.1, 30, 32
W1 = rng.normal(size=(input_size, hidden_size)).astype(np.float32) * np.sqrt(2 / input_size)
b1 = np.zeros(hidden_size, dtype=np.float32)
W2 = rng.normal(size=(hidden_size, output_size)).astype(np.float32) * np.sqrt(2 / hidden_size)
b2 = np.zeros(output_size, dtype=np.float32)


def forward(x):
    z1 = x @ W1 + b1
    h = np.maximum(z1, 0)
    return z1, h, h @ W2 + b2


def mse(y_pred, y_true):
    return np.mean((y_pred - y_true) ** 2)


for epoch in range(epochs + 1):
    if epoch % 10 == 0:
        print(f"epoch {epoch:3d}  loss {mse(forward(X_train)[2], y_train):.4f}")
    if epoch == epochs:
        break
    order = rng.permutation(len(X_train))
    for start in range(0, len(X_train), batch_size):
        x, y = X_train[order[start:start + batch_size]], y_train[order[start:start + batch_size]]
        z1, h, y_pred = forward(x)
        d_pred = 2 * (y_pred - y) / y_pred.size  # MSE is a mean over all n*5 entries
        dW2, db2 = h.T @ d_pred, d_pred.sum(axis=0)
        dz1 = (d_pred @ W2.T) * (z1 > 0)
        dW1, db1 = x.T @ dz1, dz1.sum(axis=0)
        W1 -= learning_rate * dW1
        b1 -= learning_rate * db1
        W2 -= learning_rate * dW2
        b2 -= learning_rate * db2
