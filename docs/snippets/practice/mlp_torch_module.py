import numpy as np
import torch
from torch import nn

rng = np.random.default_rng(0)
X_train = rng.normal(size=(512, 10)).astype(np.float32)
teacher = (rng.normal(size=(10, 5)) / np.sqrt(10)).astype(np.float32)
y_train = np.tanh(X_train @ teacher)
X_train, y_train = torch.from_numpy(X_train), torch.from_numpy(y_train)

torch.manual_seed(0)
model = nn.Sequential(
    nn.Linear(10, 20),  # stores W as (out, in) = (20, 10) and computes x @ W.T + b
    nn.ReLU(),
    nn.Linear(20, 5),
)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(X_train, y_train), batch_size=32, shuffle=True
)
with torch.no_grad():
    print(f"before  loss {loss_fn(model(X_train), y_train).item():.4f}")
for epoch in range(30):
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
with torch.no_grad():
    print(f"after   loss {loss_fn(model(X_train), y_train).item():.4f}")
