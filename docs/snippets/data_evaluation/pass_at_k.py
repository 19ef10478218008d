"""pass@k: the chance that at least one of k samples solves a problem, estimated without bias
from n >= k samples of which c are correct (Chen et al., 2021).

pass@k = 1 - C(n - c, k) / C(n, k), computed as a product so that large n does not overflow.
"""
import numpy as np


def pass_at_k(n, c, k):
    if n - c < k:  # every choice of k samples contains a correct one
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


# 200 samples per problem, as in the paper; three problems with 0, 12 and 150 correct samples.
correct = [0, 12, 150]
for k in (1, 10, 100):
    per_problem = [pass_at_k(200, c, k) for c in correct]
    print(f"pass@{k}: per problem {', '.join(f'{p:.3f}' for p in per_problem)}; benchmark {np.mean(per_problem):.3f}")

# The naive estimate, "did the first k samples contain a correct one", is right on average
# but noisy; for k = 1 the unbiased estimator is simply c / n.
print(f"pass@1 with n = 200, c = 12: {pass_at_k(200, 12, 1):.3f} = 12/200")
