import numpy as np

logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])  # (n=2, k=3)
labels = np.array([0, 1])
n = logits.shape[0]

shifted = logits - logits.max(axis=1, keepdims=True)  # same softmax, no overflow
log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
loss = -log_p[np.arange(n), labels].mean()

y = np.eye(logits.shape[1])[labels]  # one-hot
grad = (np.exp(log_p) - y) / n  # the formula: (p - y) / n

print(f"loss = {loss:.4f}")
print(np.array2string(grad, precision=4, suppress_small=True))
