import numpy as np
import torch
import torch.nn.functional as F

logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]], dtype=torch.float64, requires_grad=True)
labels = torch.tensor([0, 1])

loss = F.cross_entropy(logits, labels)  # softmax + cross-entropy, mean over the batch
loss.backward()  # autograd fills logits.grad

print(f"loss = {loss.item():.4f}")
print(np.array2string(logits.grad.numpy(), precision=4, suppress_small=True))
