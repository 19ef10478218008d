"""Which open-weight models fit where: the memory of their weights in bf16 and in 4 bits.

A model needs its weights in memory, plus room for the KV cache, activations and the runtime;
the rule of thumb here keeps 20% of the device's memory for those. 4-bit checkpoints also store
one 16-bit scale per group of 64 weights: 4.25 bits per weight.
"""
DEVICES = [("laptop CPU", 16), ("consumer GPU", 24), ("data-centre GPU", 80)]  # memory in GB
BITS = {"bf16": 16, "4-bit": 4.25}
USABLE = 0.8  # the other 20% of the device is left for the KV cache, activations and runtime


def weights_gb(params_billion, bits):
    return params_billion * 1e9 * bits / 8 / 1e9


def smallest_device(params_billion, bits):
    for name, memory in DEVICES:
        if weights_gb(params_billion, bits) <= USABLE * memory:
            return name
    return "several GPUs"


MODELS = [("Qwen2.5 0.5B", 0.5), ("Qwen2.5 7B", 7), ("Llama 3 8B", 8), ("Mixtral 8x7B", 47),
          ("Llama 3 70B", 70), ("Qwen2.5 72B", 72), ("Llama 3 405B", 405), ("DeepSeek-V3", 671)]
for model, params in MODELS:
    cells = [f"{weights_gb(params, bits):.1f} GB on {smallest_device(params, bits)}" for bits in BITS.values()]
    print(f"{model:>13}: bf16 {cells[0]}; 4-bit {cells[1]}")
