"""LoRA with PEFT on a tiny Llama: which weights train, and how many.

LoRA freezes a weight W (d_out x d_in) and learns W + B A, with B (d_out x r) and A (r x d_in):
r (d_in + d_out) parameters instead of d_in d_out. Notebook 09 implements LoRA itself; PEFT is
the library most fine-tuning code uses. For a real model, load it with from_pretrained first.
"""
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

torch.manual_seed(0)
config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2)
model = LlamaForCausalLM(config)
lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, task_type="CAUSAL_LM")
model = get_peft_model(model, lora)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
total = sum(p.numel() for p in model.parameters())
print(f"trainable {trainable:,} of {total:,} parameters ({trainable / total:.2%})")
for name, p in model.named_parameters():
    if p.requires_grad and ".layers.0." in name:  # layer 0's adapters; layer 1 has the same
        print(f"  {name.removeprefix('base_model.model.model.')}: {tuple(p.shape)}")

# After training, the adapter can be merged into W: the model is a plain Llama again.
merged = model.merge_and_unload()
print("after merging:", type(merged).__name__, f"{merged.num_parameters():,} parameters")
