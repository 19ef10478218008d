import numpy as np
import torch

# Data: the document never defines X_train; we generate a regression task.
rng = np.random.default_rng(0)
X_train = rng.normal(size=(512, 10)).astype(np.float32)
teacher = (rng.normal(size=(10, 5)) / np.sqrt(10)).astype(np.float32)
y_train = np.tanh(X_train @ teacher)  # a smooth non-linear target, (512, 5)
X_train, y_train = torch.from_numpy(X_train), torch.from_numpy(y_train)

# Model 10-20-5 with explicit parameters, the same shapes as the other tabs.
torch.manual_seed(0)
input_size, hidden_size, output_size = 10, 20, 5
learning_rate, epochs, batch_size = 0.1, 30, 32
W1 = (torch.randn(input_size, hidden_size) * (2 / input_size) ** 0.5).requires_grad_()
b1 = torch.zeros(hidden_size, requires_grad=True)
W2 = (torch.randn(hidden_size, output_size) * (2 / hidden_size) ** 0.5).requires_grad_()
b2 = torch.zeros(output_size, requires_grad=True)
optimizer = torch.optim.SGD([W1, b1, W2, b2], lr=learning_rate)


def forward(x):
    h = torch.relu(x @ W1 + b1)
    return h @ W2 + b2


for epoch in range(epochs + 1):
    if epoch % 10 == 0:
        with torch.no_grad():
            loss = torch.mean((forward(X_train) - y_train) ** 2)
        print(f"epoch {epoch:3d}  loss {loss.item():.4f}")
    if epoch == epochs:
        break
    for rows in torch.randperm(len(X_train)).split(batch_size):
        loss = torch.mean((forward(X_train[rows]) - y_train[rows]) ** 2)
        optimizer.zero_grad()  # gradients accumulate in .grad unless cleared
        loss.backward()  # autograd: backpropagation through the recorded graph
        optimizer.step()  # W <- W - lr * dL/dW for every parameter
