"""Gradient descent on L(w) = a * w**2 / 2, whose gradient is a * w.

Each step multiplies w by (1 - lr * a): the iterates shrink to the minimum
w = 0 exactly when |1 - lr * a| < 1, that is 0 < lr < 2 / a.
"""
a = 4.0  # curvature: the stable learning rates are 0 < lr < 2 / a = 0.5

for lr in (0.05, 0.25, 0.45, 0.55):
    w = 1.0
    for _ in range(20):
        w = w - lr * (a * w)  # w_new = w_old - lr * dL/dw
    print(f"lr = {lr:.2f}: factor 1 - lr*a = {1 - lr * a:+.2f}, w after 20 steps = {w:.3g}")
