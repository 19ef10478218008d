"""What activation checkpointing saves: the bytes autograd keeps for the backward pass.

A stack of 8 MLP blocks (each Linear, GELU, Linear, with a residual) on 512 tokens of width
64. Without checkpointing, every block keeps its inputs, the hidden layer before and after
GELU, for the backward pass. With torch.utils.checkpoint, each block keeps only its input and
runs its forward pass again during the backward pass.
"""
import torch
from torch.utils.checkpoint import checkpoint

torch.manual_seed(0)
tokens, width, blocks = 512, 64, 8
layers = torch.nn.ModuleList(
    torch.nn.Sequential(torch.nn.Linear(width, 4 * width), torch.nn.GELU(), torch.nn.Linear(4 * width, width))
    for _ in range(blocks)
)
parameters = {p.data_ptr() for p in layers.parameters()}


def saved_activation_bytes(use_checkpoint):
    saved = {}

    def pack(tensor):  # called for every tensor autograd saves for the backward pass
        if tensor.data_ptr() not in parameters:  # weights are stored anyway; count activations only
            saved[tensor.data_ptr()] = tensor.numel() * tensor.element_size()
        return tensor

    x = torch.randn(tokens, width, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        for layer in layers:
            x = x + (checkpoint(layer, x, use_reentrant=False) if use_checkpoint else layer(x))
    x.sum().backward()  # both versions give the same gradients; only memory and time differ
    return sum(saved.values())


plain, checkpointed = saved_activation_bytes(False), saved_activation_bytes(True)
per_block = tokens * width * 4  # one float32 block input
print(f"saved without checkpointing: {plain:,} bytes ({plain / per_block:g} block inputs' worth)")
print(f"saved with checkpointing:    {checkpointed:,} bytes ({checkpointed / per_block:g} block inputs' worth)")
