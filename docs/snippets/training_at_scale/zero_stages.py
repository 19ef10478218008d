"""Training-state memory per GPU under data parallelism and ZeRO, for mixed-precision AdamW.

Per parameter: 2 bytes of bf16 weights, 2 of bf16 gradients, 12 of optimizer state
(float32 master weights, m and v). With d data-parallel GPUs, ZeRO stage 1 shards the
optimizer state, stage 2 also the gradients, stage 3 also the weights.
"""


def gb_per_gpu(n_params, d, stage):
    weights, grads, optimizer = 2 * n_params, 2 * n_params, 12 * n_params
    if stage >= 1:
        optimizer /= d
    if stage >= 2:
        grads /= d
    if stage >= 3:
        weights /= d
    return (weights + grads + optimizer) / 1e9


for n_params, d in [(7.5e9, 64), (70e9, 64)]:
    cells = ", ".join(f"{name} {gb_per_gpu(n_params, d, stage):.1f} GB"
                      for stage, name in enumerate(["plain DP", "ZeRO-1", "ZeRO-2", "ZeRO-3"]))
    print(f"{n_params / 1e9:g}B parameters on {d} GPUs: {cells}")
