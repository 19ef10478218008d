"""Megatron-style tensor parallelism of an MLP, simulated with two "GPUs" on one CPU.

Y = GELU(X A) B. A is split by columns, so each GPU computes its own slice of GELU(X A)
without talking to the other; B is split by rows, so each GPU produces a partial Y,
and one all-reduce (a sum over the GPUs) gives the full output.
"""
import torch
import torch.nn.functional as F

torch.manual_seed(0)
tokens, d_model, d_ff, gpus = 4, 8, 32, 2
X, A, B = torch.randn(tokens, d_model), torch.randn(d_model, d_ff), torch.randn(d_ff, d_model)
reference = F.gelu(X @ A) @ B

A_shards = A.chunk(gpus, dim=1)  # columns of A: GPU g holds d_model x d_ff/2
B_shards = B.chunk(gpus, dim=0)  # rows of B: GPU g holds d_ff/2 x d_model
partial = [F.gelu(X @ A_g) @ B_g for A_g, B_g in zip(A_shards, B_shards)]  # no communication
Y = sum(partial)  # the all-reduce
print("column-then-row split, max error:", f"{(Y - reference).abs().max().item():.1e}")

# Splitting A by rows instead would need a sum *before* the GELU, which is not linear:
rows = [X_g @ A_g for X_g, A_g in zip(X.chunk(gpus, dim=1), A.chunk(gpus, dim=0))]
wrong = sum(F.gelu(r) for r in rows) @ B
print("row split of A, GELU applied per GPU, max error:", f"{(wrong - reference).abs().max().item():.1f}")
