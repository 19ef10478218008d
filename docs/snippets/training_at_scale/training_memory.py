"""Bytes per parameter of the training state, measured on a small model.

Two recipes, each one AdamW step, then every tensor the step keeps is counted:
- fp32: weights, gradients and AdamW's two moments, all in float32;
- mixed precision: bf16 weights and gradients for the forward and backward
  passes, and a float32 master copy of the weights that AdamW updates.
"""
import torch

torch.manual_seed(0)


def small_model(dtype):
    return torch.nn.Sequential(
        torch.nn.Linear(256, 1024), torch.nn.GELU(), torch.nn.Linear(1024, 256),
    ).to(dtype)


def nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def adam_state_bytes(optimizer):
    return nbytes(v for state in optimizer.state.values() for k, v in state.items() if k != "step")


x = torch.randn(8, 256)

# fp32: the optimizer updates the model's own weights.
model = small_model(torch.float32)
n = sum(p.numel() for p in model.parameters())
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
model(x).pow(2).mean().backward()
optimizer.step()
fp32 = {"weights": nbytes(model.parameters()), "gradients": nbytes(p.grad for p in model.parameters()),
        "Adam m and v": adam_state_bytes(optimizer)}

# Mixed precision: bf16 weights and gradients, AdamW on a float32 master copy.
model = small_model(torch.bfloat16)
master = [p.detach().float().requires_grad_() for p in model.parameters()]
optimizer = torch.optim.AdamW(master, lr=1e-3)
model(x.bfloat16()).float().pow(2).mean().backward()
for p32, p16 in zip(master, model.parameters()):
    p32.grad = p16.grad.float()  # the bf16 gradient, upcast for the update
optimizer.step()
for p32, p16 in zip(master, model.parameters()):
    p16.data.copy_(p32.data)  # the updated master weights, rounded to bf16 for the next step
    p32.grad = None  # the float32 gradient is a temporary, freed after the step
mixed = {"weights": nbytes(model.parameters()), "gradients": nbytes(p.grad for p in model.parameters()),
         "master weights": nbytes(master), "Adam m and v": adam_state_bytes(optimizer)}

print(f"parameters N = {n:,}")
for name, parts in (("fp32", fp32), ("mixed bf16", mixed)):
    detail = ", ".join(f"{k} {v / n:g}" for k, v in parts.items())
    print(f"{name:>10}: {detail}; total {sum(parts.values()) / n:g} bytes per parameter")
