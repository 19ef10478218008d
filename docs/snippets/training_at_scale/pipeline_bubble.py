"""The bubble of a GPipe-style pipeline, counted on a schedule.

p stages (GPUs), m micro-batches; every forward or backward of one micro-batch on one
stage takes one time slot. Stage s can run the forward of micro-batch i at slot s + i,
and the backward pass flows back the same way after the last forward.
"""


def bubble_fraction(p, m):
    """Idle stage-slots over all stage-slots, for the forward and backward passes of one batch."""
    busy = set()
    for stage in range(p):
        for i in range(m):
            busy.add((stage, stage + i))  # forward of micro-batch i on this stage
            busy.add((stage, (m + p - 1) + (p - 1 - stage) + i))  # backward, last stage first
    slots = 2 * (m + p - 1)  # length of the schedule
    return 1 - len(busy) / (p * slots)


for p, m in [(4, 1), (4, 4), (4, 32), (16, 128)]:
    print(f"p = {p:>2} stages, m = {m:>3} micro-batches: idle {bubble_fraction(p, m):.1%}"
          f" (formula (p-1)/(m+p-1) = {(p - 1) / (m + p - 1):.1%})")
