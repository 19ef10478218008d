"""One forward pass, one backward pass and one gradient-descent step, by hand.

A 2-2-2 network (dense, ReLU, dense, softmax cross-entropy) on a batch of two
examples, small enough to check every number with a calculator.
"""
import numpy as np

np.set_printoptions(precision=4, suppress=True)

x = np.array([[1.0, 2.0], [-1.0, 0.5]])  # (n=2, d=2): one example per row
y = np.array([[1.0, 0.0], [0.0, 1.0]])  # one-hot labels: classes 0 and 1
W1 = np.array([[0.5, -0.3], [0.2, 0.4]])  # (d=2, h=2)
b1 = np.array([0.0, 0.1])
W2 = np.array([[1.0, -1.0], [0.5, -0.25]])  # (h=2, k=2)
b2 = np.array([0.0, 0.0])
lr = 0.5
n = x.shape[0]


def show(name, value):
    print(f"{name} =\n{value}")


# Forward
Z1 = x @ W1 + b1
H = np.maximum(Z1, 0.0)
Z2 = H @ W2 + b2
P = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
P /= P.sum(axis=1, keepdims=True)
loss = -np.sum(y * np.log(P)) / n
show("Z1", Z1)
show("H", H)
show("Z2", Z2)
show("P", P)
show("loss", np.round(loss, 4))

# Backward: every gradient has the shape of what it differentiates
dZ2 = (P - y) / n
dW2 = H.T @ dZ2
db2 = dZ2.sum(axis=0)
dH = dZ2 @ W2.T
dZ1 = dH * (Z1 > 0)
dW1 = x.T @ dZ1
db1 = dZ1.sum(axis=0)
show("dZ2", dZ2)
show("dW2", dW2)
show("db2", db2)
show("dH", dH)
show("dZ1", dZ1)
show("dW1", dW1)
show("db1", db1)

# One step of gradient descent, then the loss again
W1, b1 = W1 - lr * dW1, b1 - lr * db1
W2, b2 = W2 - lr * dW2, b2 - lr * db2
H = np.maximum(x @ W1 + b1, 0.0)
Z2 = H @ W2 + b2
P = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
P /= P.sum(axis=1, keepdims=True)
show("loss after one step", np.round(-np.sum(y * np.log(P)) / n, 4))
