"""Tokens per character of English, Python and Chinese under two byte-level BPE tokenizers.

- "course BPE": notebook 07's algorithm (most frequent pair first, ties to the smallest), with
  its merges learned here on a short English and Python text;
- GPT-2: its 50,000 merges, read from the course's copy of GPT-2's tokenizer files.
"""
import re
from collections import Counter
from pathlib import Path

from tokenizers import ByteLevelBPETokenizer

PRETOKENIZE = re.compile(r" ?[A-Za-z_][A-Za-z_0-9]*| ?[0-9]+| ?[^\sA-Za-z_0-9]+|\s+(?!\S)|\s+")


def merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_bpe(text, vocab_size):
    words = Counter(PRETOKENIZE.findall(text))
    seqs, counts, merges = [list(w.encode("utf-8")) for w in words], list(words.values()), []
    for new_id in range(256, vocab_size):
        pairs = Counter()
        for seq, count in zip(seqs, counts):
            for pair in zip(seq, seq[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        seqs = [merge(seq, best, new_id) for seq in seqs]
    return merges


def encode(text, merges):
    rank = {pair: i for i, pair in enumerate(merges)}
    ids = []
    for chunk in PRETOKENIZE.findall(text):
        seq = list(chunk.encode("utf-8"))
        while len(seq) > 1:
            pair = min(zip(seq, seq[1:]), key=lambda p: rank.get(p, len(rank)))
            if pair not in rank:
                break
            seq = merge(seq, pair, 256 + rank[pair])
        ids.extend(seq)
    return ids


TRAINING_TEXT = """The model reads a sequence of tokens and predicts the next one. Training makes the
predicted probability of the true next token as high as possible, over every position of every
sequence in the data. A tokenizer turns text into tokens; a larger vocabulary makes sequences
shorter and the embedding table larger.
def train(model, data, steps):
    for step in range(steps):
        loss = model.loss(data.batch())
        loss.backward()
        model.update()
    return model
"""
SAMPLES = {
    "English": "Language models are trained on text from the web, and the tokenizer decides how "
               "many tokens each sentence costs.",
    "Python": "def count_tokens(texts, tokenizer):\n    return sum(len(tokenizer.encode(t)) for t in texts)\n",
    "Chinese": "大语言模型在网页文本上训练，分词器决定每个句子要花多少个词元。",
}

# The course keeps GPT-2's two tokenizer files next to the repository: ../shared/data/gpt2/.
gpt2_files = Path(__file__).resolve().parents[4] / "shared" / "data" / "gpt2"
gpt2 = ByteLevelBPETokenizer(str(gpt2_files / "gpt2_vocab.json"), str(gpt2_files / "gpt2_merges.txt"))
course = train_bpe(TRAINING_TEXT, vocab_size=512)  # asks for 256 merges
print(f"course BPE: {len(course)} merges, after which every word of its training text is one token")

print(f"{'text':>8} {'chars':>5} {'UTF-8 bytes':>11} {'course BPE':>10} {'GPT-2':>5}   tokens per character")
for name, text in SAMPLES.items():
    n_course, n_gpt2 = len(encode(text, course)), len(gpt2.encode(text).ids)
    print(f"{name:>8} {len(text):>5} {len(text.encode()):>11} {n_course:>10} {n_gpt2:>5}"
          f"   course {n_course / len(text):.2f}, GPT-2 {n_gpt2 / len(text):.2f}")
words = len(SAMPLES["English"].split())
print(f"English per word: course {len(encode(SAMPLES['English'], course)) / words:.2f}, "
      f"GPT-2 {len(gpt2.encode(SAMPLES['English']).ids) / words:.2f} tokens")
