"""torch.autocast with bf16 on the CPU: matrix products in bf16, weights and updates in float32.

The same small regression is trained twice from the same start, once in float32 and
once under autocast; the two losses stay close because bf16 keeps float32's range.
On a GPU, write device_type="cuda": the code is otherwise the same.
"""
import torch


def train(use_autocast):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randn(256, 16)
    y = x[:, :1] * 2 - x[:, 1:2]  # a target the model can learn
    for step in range(200):
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=use_autocast):
            prediction = model(x)  # nn.Linear runs in bf16 under autocast
        loss = (prediction.float() - y).pow(2).mean()  # the loss in float32
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 0:
            first = loss.item()
            dtypes = (prediction.dtype, model[0].weight.dtype, model[0].weight.grad.dtype)
    return first, loss.item(), dtypes


first32, last32, _ = train(use_autocast=False)
first16, last16, (activation, weight, gradient) = train(use_autocast=True)
print(f"under autocast: activations {activation}, weights {weight}, gradients {gradient}")
print(f"loss at step 0: float32 {first32:.4f}, autocast bf16 {first16:.4f}")
print(f"loss at step 200: float32 {last32:.4f}, autocast bf16 {last16:.4f}")
