import numpy as np
import tensorflow as tf

rng = np.random.default_rng(0)
X_train = rng.normal(size=(512, 10)).astype(np.float32)
teacher = (rng.normal(size=(10, 5)) / np.sqrt(10)).astype(np.float32)
y_train = np.tanh(X_train @ teacher)

tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([
    tf.keras.Input(shape=(10,)),
    tf.keras.layers.Dense(20, activation="relu"),  # W1: (10, 20), b1: (20,)
    tf.keras.layers.Dense(5),  # W2: (20, 5), b2: (5,)
])
model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=0.1), loss="mse")
print(f"before  loss {model.evaluate(X_train, y_train, verbose=0):.4f}")
model.fit(X_train, y_train, epochs=30, batch_size=32, verbose=0)
print(f"after   loss {model.evaluate(X_train, y_train, verbose=0):.4f}")
