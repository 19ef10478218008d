import numpy as np
import tensorflow as tf

# Data: the document never defines X_train; we generate a regression task.
rng = np.random.default_rng(0)
X_train = rng.normal(size=(512, 10)).astype(np.float32)
teacher = (rng.normal(size=(10, 5)) / np.sqrt(10)).astype(np.float32)
y_train = np.tanh(X_train @ teacher)  # a smooth non-linear target, (512, 5)

# Model 10-20-5 with explicit variables, as in the document, but TF2-style:
# no placeholders (a tf.function takes tensors as arguments), no session.
input_size, hidden_size, output_size = 10, 20, 5
learning_rate, epochs, batch_size = 0.1, 30, 32
he = tf.keras.initializers.HeNormal(seed=0)
W1 = tf.Variable(he([input_size, hidden_size]))
b1 = tf.Variable(tf.zeros([hidden_size]))
W2 = tf.Variable(he([hidden_size, output_size]))
b2 = tf.Variable(tf.zeros([output_size]))
variables = [W1, b1, W2, b2]
optimizer = tf.keras.optimizers.SGD(learning_rate)  # replaces tf.train.GradientDescentOptimizer


def forward(x):
    h = tf.nn.relu(x @ W1 + b1)
    return h @ W2 + b2


@tf.function  # traced once into a graph, the speed TF1 sessions gave, without a session
def train_step(x, y):
    with tf.GradientTape() as tape:  # records the forward pass ...
        loss = tf.reduce_mean(tf.square(forward(x) - y))
    grads = tape.gradient(loss, variables)  # ... and differentiates it
    optimizer.apply_gradients(zip(grads, variables))
    return loss


dataset = tf.data.Dataset.from_tensor_slices((X_train, y_train)).shuffle(512, seed=0).batch(batch_size)
for epoch in range(epochs + 1):
    if epoch % 10 == 0:
        loss = tf.reduce_mean(tf.square(forward(X_train) - y_train))  # eager: a value right away
        print(f"epoch {epoch:3d}  loss {loss.numpy():.4f}")
    if epoch == epochs:
        break
    for x, y in dataset:
        train_step(x, y)
