#!/usr/bin/env python3
"""Writes a deterministic release tree for the benchmarks (bench/daemon_bench.sh,
bench/extract_bench.sh).

    bench/make_release_tree.py DIR [--files N] [--mib M] [--seed S]

Shaped like a Python service release: a package of nested modules (many small text files
that compress like source code) and a handful of larger data files that compress less, so
the gzip ratio and the per-entry costs of extraction are those of a real push. DIR must not
exist. The same arguments give the same bytes, on any machine.
"""
import argparse
import hashlib
import os
import sys

VOCABULARY = (
    b"import from def class return self if else for in while try except raise with as "
    b"yield lambda None True False release digest store current previous unit link "
    b"helper daemon master worker health probe spool extract install rollback commit "
    b"state journal policy rule refuse accept verify timeout limit socket request reply"
).split()


class Stream:
    """A deterministic byte source: SHA-256 in counter mode over the seed."""

    def __init__(self, seed):
        self.key = hashlib.sha256(b"decnet-release-tree:" + str(seed).encode()).digest()
        self.counter = 0
        self.pool = b""

    def take(self, n):
        while len(self.pool) < n:
            block = hashlib.sha256(self.key + self.counter.to_bytes(8, "little")).digest()
            self.counter += 1
            self.pool += block
        out, self.pool = self.pool[:n], self.pool[n:]
        return out

    def below(self, n):
        return int.from_bytes(self.take(4), "little") % n


def source_text(stream, size):
    """Indented lines of vocabulary words: compresses about 4:1, like source code."""
    lines, total = [], 0
    while total < size:
        depth = stream.below(4)
        words = [VOCABULARY[stream.below(len(VOCABULARY))] for _ in range(2 + stream.below(9))]
        line = b"    " * depth + b" ".join(words) + b"\n"
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def data_blob(stream, size):
    """Random bytes and runs, 3:5: compresses about 2.6:1, like bundled data files."""
    out = bytearray()
    while len(out) < size:
        chunk = stream.take(512)
        out += chunk if stream.below(8) < 3 else bytes([chunk[0]]) * 512
    return bytes(out[:size])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--files", type=int, default=10_001)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.files < 2 or args.mib < 1:
        sys.exit("make_release_tree: --files must be at least 2 and --mib at least 1")
    if os.path.exists(args.dir):
        sys.exit(f"make_release_tree: {args.dir} exists")

    stream = Stream(args.seed)
    total = args.mib * 1024 * 1024
    blobs = max(1, min(8, args.files // 1000))
    sources = args.files - blobs - 1  # and pyproject.toml
    # A tenth of the bytes are source files, the rest the data files.
    source_size = max(64, total // 10 // max(1, sources))
    blob_size = (total - source_size * sources) // blobs

    os.makedirs(args.dir)
    with open(os.path.join(args.dir, "pyproject.toml"), "wb") as f:
        f.write(b'[project]\nname = "decnet"\nversion = "0.0.0"\n')
    for i in range(sources):
        # decnet/pNN/mNN/module_NNNNN.py: 3 levels, at most 100 entries per directory.
        rel = os.path.join("decnet", f"p{i // 10000:02d}", f"m{i // 100 % 100:02d}",
                           f"module_{i:05d}.py")
        path = os.path.join(args.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(source_text(stream, source_size))
    for i in range(blobs):
        path = os.path.join(args.dir, "decnet", "data", f"blob_{i}.bin")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            remaining = blob_size
            while remaining > 0:
                n = min(remaining, 1 << 20)
                f.write(data_blob(stream, n))
                remaining -= n


if __name__ == "__main__":
    main()
