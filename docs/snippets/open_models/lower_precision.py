"""Loading a checkpoint in lower precision, and what a 4-bit checkpoint stores.

A tiny random Llama is saved to a folder, as a downloaded checkpoint would be, and loaded back
in float32 and in bf16. Then one weight matrix is quantised to 4 bits by hand, in groups of 64
weights that share one scale (the idea behind 4-bit formats such as GPTQ's and QLoRA's NF4).
"""
import tempfile

import torch
from transformers import LlamaConfig, LlamaForCausalLM

torch.manual_seed(0)
config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2)
with tempfile.TemporaryDirectory() as folder:
    LlamaForCausalLM(config).save_pretrained(folder)
    for dtype in (torch.float32, torch.bfloat16):
        model = LlamaForCausalLM.from_pretrained(folder, dtype=dtype)
        n = model.num_parameters()
        print(f"{str(dtype):>14}: {model.get_memory_footprint():,} bytes = {model.get_memory_footprint() / n:.2f} per parameter")


def quantise_4bit(w, group=64):
    """Signed 4-bit integers (-8..7) and one scale per group of `group` weights."""
    groups = w.reshape(-1, group)
    scale = groups.abs().amax(dim=1, keepdim=True) / 7
    q = torch.clamp(torch.round(groups / scale), -8, 7)
    return q, scale


w = model.model.layers[0].mlp.up_proj.weight.float()
q, scale = quantise_4bit(w)
restored = (q * scale).reshape(w.shape)
bits = (q.numel() * 4 + scale.numel() * 16) / w.numel()  # 4-bit codes and a 16-bit scale per group
print(f"4-bit with a scale per 64 weights: {bits:g} bits per weight; "
      f"mean relative error {((restored - w).abs().mean() / w.abs().mean()).item():.3f}")
