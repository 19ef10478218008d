"""The floating-point formats of training: range, precision, and what happens to a small gradient."""
import torch

formats = [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16),
           ("fp8 E4M3", torch.float8_e4m3fn), ("fp8 E5M2", torch.float8_e5m2)]
print(f"{'format':>9} {'bits':>4} {'largest':>9} {'smallest normal':>15} {'epsilon':>8}")
for name, dtype in formats:
    info = torch.finfo(dtype)
    print(f"{name:>9} {info.bits:>4} {info.max:>9.3g} {info.smallest_normal:>15.3g} {info.eps:>8.3g}")

# A gradient of 1e-8 survives in bf16 (float32's exponent range) but underflows to zero in fp16.
gradient = torch.tensor(1e-8)
print("1e-8 in bf16:", f"{gradient.bfloat16().item():.3g}", "| in fp16:", gradient.half().item())
# Loss scaling: multiply the loss (hence every gradient) by 1024 before the backward pass in fp16,
# divide by 1024 in float32 before the update.
scale = 1024.0
print("fp16 with loss scale 1024, unscaled in fp32:", f"{(gradient * scale).half().float().item() / scale:.3g}")
