import numpy as np
import tensorflow as tf

logits = tf.Variable([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]], dtype=tf.float64)
labels = tf.constant([0, 1])

with tf.GradientTape() as tape:  # records the operations, then differentiates them
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )
grad = tape.gradient(loss, logits)

print(f"loss = {loss.numpy():.4f}")
print(np.array2string(grad.numpy(), precision=4, suppress_small=True))
