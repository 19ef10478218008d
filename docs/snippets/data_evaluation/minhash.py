"""Near-duplicate detection with MinHash (Broder, 1997), on three short documents.

A document becomes its set of word 5-grams (shingles). The Jaccard similarity of two sets,
|A & B| / |A | B|, is the probability that the smallest hash of A equals the smallest hash of B
under a random hash function; k hash functions estimate it by the fraction of equal minima.
"""
import hashlib


def shingles(text, n=5):
    words = text.lower().split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def minhash_signature(items, k=128):
    # Hash function number s: SHA-1 of "s:item", read as an integer.
    return [min(int.from_bytes(hashlib.sha1(f"{s}:{x}".encode()).digest()[:8], "big") for x in items)
            for s in range(k)]


def jaccard(a, b):
    return len(a & b) / len(a | b)


base = ("the cat sat on the mat and looked at the garden where the birds were singing in the "
        "morning sun while the dog slept under the old tree near the house")
documents = {
    "copy with one word changed": base.replace("old tree", "big tree"),
    "copy with a sentence added": base + " until the rain came and everyone went inside",
    "another text": "training a language model needs clean text without duplicates because "
                    "repeated pages waste compute and make the model memorise them",
}
base_shingles, base_signature = shingles(base), minhash_signature(shingles(base))
for name, text in documents.items():
    s = shingles(text)
    signature = minhash_signature(s)
    estimate = sum(x == y for x, y in zip(base_signature, signature)) / len(signature)
    print(f"{name:>28}: Jaccard {jaccard(base_shingles, s):.2f}, MinHash estimate {estimate:.2f}")

# Banding: b bands of r rows; a pair is a candidate when all r rows of some band agree.
bands, rows = 16, 8
for similarity in (0.3, 0.5, 0.7, 0.9):
    print(f"similarity {similarity}: candidate with probability {1 - (1 - similarity ** rows) ** bands:.3f}")
