"""Retrieval-augmented generation in three steps: embed the documents, retrieve the nearest ones
to the question, and put them in the prompt.

The embedding here is a hashed bag of words, so the example runs anywhere; a real system uses a
trained embedding model (a sentence encoder) that maps texts of similar meaning to nearby vectors,
and a vector index (FAISS, or a database) instead of a full scan.
"""
import hashlib
import re

import numpy as np

DIMENSION = 256


def embed(text):
    """A unit vector: each word adds 1 to one of 256 coordinates chosen by its hash."""
    vector = np.zeros(DIMENSION)
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSION] += 1
    return vector / np.linalg.norm(vector)


documents = [
    "Notebook 07 trains a small GPT on Python source code with a byte-level BPE tokenizer.",
    "AdamW keeps two moving averages per parameter, so mixed-precision training needs 16 bytes per parameter.",
    "LoRA freezes the pretrained weights and trains a low-rank update B A in a few matrices.",
    "MinHash estimates the Jaccard similarity of two documents to find near-duplicates.",
]
index = np.stack([embed(d) for d in documents])  # the vector index: one row per document

question = "How many bytes per parameter does training with AdamW need?"
scores = index @ embed(question)  # cosine similarities, since every vector has length 1
top = np.argsort(-scores)[:2]
for i in top:
    print(f"score {scores[i]:.2f}: {documents[i]}")

context = "\n".join(f"- {documents[i]}" for i in top)
messages = [
    {"role": "system", "content": "Answer from the context below; say so if it does not contain the answer.\n"
                                  f"Context:\n{context}"},
    {"role": "user", "content": question},
]
print(messages[0]["content"])
