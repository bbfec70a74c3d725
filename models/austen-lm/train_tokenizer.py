#!/usr/bin/python3
"""Train a GPT-2 style byte-level BPE tokenizer on five Jane Austen novels.

* bytes are mapped to printable unicode characters with GPT-2's bytes_to_unicode table;
* pre-tokenisation uses the GPT-2 split pattern
    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
  Python's `re` has no \\p{..}, so the letter / number classes are built as explicit
  code-point ranges from unicodedata (general category L* / N*), which reproduces the
  .NET / `regex` semantics exactly (up to Unicode-version differences);
* vocabulary: 256 byte tokens (GPT-2 order) + 3839 merges + `<|endoftext|>` = 4096 ids.

BPE training counts the unique pre-tokens with their frequencies and keeps incremental
pair counts (pair -> count, pair -> words containing it, and a lazy max-heap); ties
between equally frequent pairs are broken by the lexicographically smallest pair, so the
result is deterministic.

Outputs (GPT-2 format): vocab.json (token -> id) and merges.txt (`#version: 0.2` first).
Also writes tokenizer_check.json (sample strings and their ids) for the C# tests.

Usage: /usr/bin/python3 models/austen-lm/train_tokenizer.py [--vocab-size 4096]
"""
import argparse
import heapq
import json
import os
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT_DIR = os.path.normpath(os.path.join(HERE, "..", "text"))
TRAIN_NOVELS = ["emma.txt", "pride_and_prejudice.txt", "sense_and_sensibility.txt",
                "mansfield_park.txt", "northanger_abbey.txt"]
HELDOUT_NOVEL = "persuasion.txt"
EOT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible byte -> unicode character table (dict order = GPT-2 id order)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {v: k for k, v in BYTE_ENCODER.items()}


def _category_class(prefix):
    """Regex character-class body with all code points whose category starts with prefix."""
    ranges = []
    start = prev = None
    for cp in range(0x110000):
        if unicodedata.category(chr(cp)).startswith(prefix):
            if start is None:
                start = prev = cp
            elif cp == prev + 1:
                prev = cp
            else:
                ranges.append((start, prev))
                start = prev = cp
    if start is not None:
        ranges.append((start, prev))

    def esc(cp):
        return "\\U%08x" % cp
    return "".join(esc(a) if a == b else esc(a) + "-" + esc(b) for a, b in ranges)


_L = _category_class("L")
_N = _category_class("N")
GPT2_PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d| ?[" + _L + r"]+| ?[" + _N + r"]+| ?[^\s" + _L + _N +
                r"]+|\s+(?!\S)|\s+")
PRETOKENIZE = re.compile(GPT2_PATTERN)


def pretokenize(text):
    """Split text into pre-tokens, each mapped to its byte-level unicode string."""
    return ["".join(BYTE_ENCODER[b] for b in m.encode("utf-8")) for m in PRETOKENIZE.findall(text)]


def read_text(name):
    with open(os.path.join(TEXT_DIR, name), encoding="utf-8") as f:
        return f.read()


def train_bpe(word_freqs, num_merges, log_every=500):
    """word_freqs: dict pre-token(str) -> count. Returns list of merges (a, b)."""
    words = [list(w) for w in word_freqs]
    freqs = list(word_freqs.values())
    pair_counts = defaultdict(int)
    pair_words = defaultdict(set)
    for i, (w, f) in enumerate(zip(words, freqs)):
        for a, b in zip(w, w[1:]):
            pair_counts[(a, b)] += f
            pair_words[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    t0 = time.time()
    while len(merges) < num_merges and heap:
        negc, pair = heapq.heappop(heap)
        cur = pair_counts.get(pair, 0)
        if cur <= 0 or -negc != cur:
            continue  # stale entry
        merges.append(pair)
        a, b = pair
        new = a + b
        changed = set()
        for i in list(pair_words[pair]):
            w = words[i]
            f = freqs[i]
            if len(w) < 2:
                continue
            # remove this word's old pair counts
            for p in zip(w, w[1:]):
                pair_counts[p] -= f
                changed.add(p)
            # merge left to right
            out = []
            j = 0
            while j < len(w):
                if j < len(w) - 1 and w[j] == a and w[j + 1] == b:
                    out.append(new)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            old_pairs = set(zip(w, w[1:]))
            new_pairs = set(zip(out, out[1:]))
            for p in zip(out, out[1:]):
                pair_counts[p] += f
                changed.add(p)
            for p in old_pairs - new_pairs:
                pair_words[p].discard(i)
            for p in new_pairs:
                pair_words[p].add(i)
        pair_counts.pop(pair, None)
        pair_words.pop(pair, None)
        for p in changed:
            c = pair_counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_counts.pop(p, None)
        if log_every and len(merges) % log_every == 0:
            print("  %d merges (%.1fs) last=%r count=%d" % (len(merges), time.time() - t0, new, cur),
                  flush=True)
    return merges


class Tokenizer:
    """Minimal GPT-2 byte-level BPE encoder/decoder over vocab.json + merges.txt."""

    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.inv = {i: t for t, i in vocab.items()}
        self.ranks = {tuple(m): r for r, m in enumerate(merges)}
        self.cache = {}
        self.eot_id = vocab.get(EOT)

    @classmethod
    def load(cls, directory=HERE):
        with open(os.path.join(directory, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        merges = []
        with open(os.path.join(directory, "merges.txt"), encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#version"):
                    continue
                a, b = line.split(" ")
                merges.append((a, b))
        return cls(vocab, merges)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token)
        while len(word) > 1:
            best = None
            best_rank = None
            for p in zip(word, word[1:]):
                r = self.ranks.get(p)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = p, r
            if best is None:
                break
            a, b = best
            out = []
            j = 0
            while j < len(word):
                if j < len(word) - 1 and word[j] == a and word[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            word = out
        ids = [self.vocab[t] for t in word]
        self.cache[token] = ids
        return ids

    def encode(self, text):
        ids = []
        for pt in pretokenize(text):
            ids.extend(self.bpe(pt))
        return ids

    def decode(self, ids):
        toks = "".join(self.inv[i] for i in ids if i != self.eot_id)
        return bytes(BYTE_DECODER[c] for c in toks).decode("utf-8", errors="replace")


CHECK_STRINGS = [
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who, for his own amusement, never took up any book but the Baronetage;",
    "\"I don't know,\" said Anne; \"we'll see what they've done.\"  It's 1814 -- CHAPTER XII.",
    "Hello world!\n\nTabs\tand   multiple   spaces, numbers 12345 and 3.14159; naïve café, Æsop.",
    "She was the youngest of the two daughters of a most affectionate, indulgent father; _underscore_ & symbols #@!",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()
    t0 = time.time()
    word_freqs = Counter()
    for name in TRAIN_NOVELS:
        word_freqs.update(pretokenize(read_text(name)))
    print("unique pre-tokens: %d, total %d (%.1fs)" % (len(word_freqs), sum(word_freqs.values()),
                                                       time.time() - t0))
    num_merges = args.vocab_size - 256 - 1
    merges = train_bpe(dict(sorted(word_freqs.items())), num_merges)
    if len(merges) < num_merges:
        print("warning: only %d merges possible" % len(merges))
    vocab = {}
    for ch in BYTE_ENCODER.values():
        vocab[ch] = len(vocab)
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab[EOT] = len(vocab)
    assert len(vocab) == 256 + len(merges) + 1
    with open(os.path.join(args.out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(args.out, "merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (a, b))
    print("vocab %d, %d merges, %.1fs" % (len(vocab), len(merges), time.time() - t0))

    tok = Tokenizer.load(args.out)
    checks = []
    for s in CHECK_STRINGS:
        ids = tok.encode(s)
        assert tok.decode(ids) == s, "round trip failed for %r" % s
        checks.append({"text": s, "ids": ids, "tokens": [tok.inv[i] for i in ids]})
    head = {"vocab_size": len(vocab), "eot_id": vocab[EOT],
            "pretokenizer_pattern": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"}
    with open(os.path.join(args.out, "tokenizer_check.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write("{\n")
        for k, v in head.items():
            f.write(" %s: %s,\n" % (json.dumps(k), json.dumps(v, ensure_ascii=False)))
        f.write(' "samples": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in checks))
        f.write("\n ]\n}\n")
    for name in TRAIN_NOVELS + [HELDOUT_NOVEL]:
        text = read_text(name)
        n = len(tok.encode(text))
        print("  %-28s %8d chars %7d tokens (%.2f chars/token)" % (name, len(text), n, len(text) / n))


if __name__ == "__main__":
    main()
