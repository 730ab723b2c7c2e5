#!/usr/bin/env python3
"""onnxruntime peer of embed_timing.rs: same model files, texts, batching and thread count.

    .models-venv/bin/python crates/isl-models/examples/embed_timing_ort.py [--threads 2] [--reps 3]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent.parent / "models"))
import make_references as mr  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir")
    args = ap.parse_args()
    root = mr.models_dir(args.dir)
    texts = (HERE / "timing_texts.txt").read_text().splitlines()
    emb = mr.Embedder(root, threads=args.threads)
    counts = [len(emb.tok.encode(t).ids) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: counts[i])
    texts = [texts[i] for i in order]
    print(f"{len(texts)} texts, {sum(counts)} tokens (mean {sum(counts) / len(texts):.1f}); "
          f"onnxruntime, {args.threads} threads")
    for batch in (1, 8, 32):
        chunks = [emb.encode(texts[i:i + batch]) for i in range(0, len(texts), batch)]

        def run():
            for ids, mask in chunks:
                emb.run(ids, mask)

        run()
        t = time.perf_counter()
        for _ in range(args.reps):
            run()
        print(f"embed batch {batch:>2}: {len(texts) * args.reps / (time.perf_counter() - t):>7.1f} texts/s "
              f"(tokenisation excluded)")
    nli = mr.Nli(root)
    pairs = list(zip(texts, reversed(texts)))
    nli.predict(pairs)
    t = time.perf_counter()
    for _ in range(args.reps):
        nli.predict(pairs)
    print(f"nli: {len(pairs) * args.reps / (time.perf_counter() - t):.1f} pairs/s")


if __name__ == "__main__":
    main()
