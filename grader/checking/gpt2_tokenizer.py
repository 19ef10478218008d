"""GPT-2's published merges in notebook 07's form, and its token ids.

GPT-2's files (``grader/data/gpt2``, OpenAI's Modified MIT License) write every byte as one
printable character (its "byte-to-unicode" table) and every token as a string of those. The
notebook's tokenizer numbers tokens as bytes 0-255 and merge i as 256 + i. GPT-2 numbers merge
i as 256 + i too, but its 256 single bytes in another order; ``to_gpt2_ids`` renumbers them.
So the notebook's ``encode(text, gpt2_merges())``, renumbered, is GPT-2's encoding of the text.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

FILES = Path(__file__).resolve().parents[1] / "data" / "gpt2"


def byte_characters() -> list[str]:
    """GPT-2's printable character for each byte 0-255 (its ``bytes_to_unicode``)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


@lru_cache(maxsize=1)
def _vocab() -> dict[str, int]:
    return json.loads((FILES / "gpt2_vocab.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def gpt2_merges() -> list[tuple[int, int]]:
    """GPT-2's 50,000 merges as pairs of the notebook's ids, in rank order."""
    ids = {c: b for b, c in enumerate(byte_characters())}
    merges = []
    for rank, line in enumerate((FILES / "gpt2_merges.txt").read_text(encoding="utf-8").splitlines()):
        if not line or line.startswith("#version"):
            continue
        a, b = line.split(" ")
        merges.append((ids[a], ids[b]))
        ids[a + b] = 256 + len(merges) - 1
    return merges


@lru_cache(maxsize=1)
def _byte_ids() -> list[int]:
    vocab = _vocab()
    return [vocab[c] for c in byte_characters()]


def to_gpt2_ids(ids) -> list[int]:
    """The notebook's ids as GPT-2 numbers them: bytes renumbered, merged tokens unchanged."""
    byte_ids = _byte_ids()
    return [byte_ids[i] if i < 256 else int(i) for i in ids]
