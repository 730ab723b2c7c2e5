#!/usr/bin/env python3
"""Writes crates/isl-models/tests/data/reference.json: embeddings and NLI probabilities that
onnxruntime computes on the prepared models (the fetched files, sha256-checked) for fixed
texts, one text or pair per call (no padding). The Rust tests compare tract against them.

    .models-venv/bin/python models/make_references.py [--dir MODELS_DIR]

Also usable as a live peer: `--live` reads JSON {"texts": [...]} or {"pairs": [[p, h], ...]}
on stdin and prints the same kind of answer (the tests call it when onnxruntime is present).
"""

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "crates" / "isl-models" / "tests" / "data" / "reference.json"

TEXTS = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog.",
    "Revenue rose 12% after the price change.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "Claims about causal effects need an identification strategy.",
    "hello",
    "Ünïcödé text, émojis 🚀 and CJK 漢字 are tokenised too.",
    "The Receiving Party shall not disclose Confidential Information to any third party.",
    "Short.",
    # Longer than the 256-token limit: truncated.
    " ".join(["The committee reviewed the quarterly forecast and the sensitivity analysis in detail."] * 30),
]

PAIRS = [
    ["The Receiving Party shall not disclose Confidential Information to any third party.",
     "Receiving Party may share some Confidential Information with some third-parties."],
    ["The Receiving Party may disclose Confidential Information to its employees who need to know.",
     "Receiving Party may share some Confidential Information with some of Receiving Party's employees."],
    ["A man is playing a guitar on stage.", "A man is playing an instrument."],
    ["The cat sleeps on the sofa.", "The cat is awake."],
    ["Upon termination the Receiving Party shall return or destroy all Confidential Information.",
     "Receiving Party shall destroy or return some Confidential Information upon the termination of Agreement."],
]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def models_dir(arg):
    if arg:
        return Path(arg)
    return Path(os.environ.get("ISL_MODELS_DIR") or Path.home() / ".cache" / "isl" / "models")


def manifest_model(name):
    m = json.loads((REPO / "models" / "manifest.json").read_text())
    return next(x for x in m["models"] if x["name"] == name)


class Embedder:
    def __init__(self, root, threads=1):
        spec = manifest_model("all-MiniLM-L6-v2")
        d = root / spec["dir"]
        for f, s in spec["files"].items():
            if sha256(d / f) != s["sha256"]:
                raise SystemExit(f"{d / f}: sha256 differs from the manifest")
        self.tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(spec["max_tokens"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(d / "model.onnx"), so, providers=["CPUExecutionProvider"])

    def encode(self, texts):
        encs = self.tok.encode_batch(texts)
        n = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), n), np.int64)
        mask = np.zeros((len(encs), n), np.int64)
        for i, e in enumerate(encs):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = 1
        return ids, mask

    def run(self, ids, mask):
        h = self.sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        m = mask[:, :, None].astype(np.float32)
        v = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def embed(self, texts):
        return self.run(*self.encode(texts))


class Nli:
    def __init__(self, root):
        spec = manifest_model("contract-nli-da")
        d = root / spec["dir"]
        self.labels = spec["labels"]
        self.tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.sess = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])

    def predict(self, pairs):
        p = np.array([e.ids for e in self.tok.encode_batch([a for a, _ in pairs])], np.int64)
        h = np.array([e.ids for e in self.tok.encode_batch([b for _, b in pairs])], np.int64)
        logits = self.sess.run(["logits"], {"hypothesis_ids": h, "premise_ids": p})[0]
        e = np.exp(logits - logits.max(1, keepdims=True))
        probs = e / e.sum(1, keepdims=True)
        return [{lab: float(row[self.labels.index(lab)]) for lab in ("entailment", "neutral", "contradiction")} for row in probs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir")
    ap.add_argument("--live", action="store_true")
    args = ap.parse_args()
    root = models_dir(args.dir)
    if args.live:
        req = json.load(sys.stdin)
        if "texts" in req:
            emb = Embedder(root)
            print(json.dumps({"embeddings": [[float(x) for x in emb.embed([t])[0]] for t in req["texts"]]}))
        else:
            print(json.dumps({"scores": Nli(root).predict([tuple(p) for p in req["pairs"]])}))
        return
    emb = Embedder(root)
    out = {
        "embedding_model": "all-MiniLM-L6-v2",
        "texts": TEXTS,
        "embeddings": [[float(x) for x in emb.embed([t])[0]] for t in TEXTS],
        "token_counts": [len(emb.tok.encode(t).ids) for t in TEXTS],
        "nli_model": "contract-nli-da",
        "pairs": PAIRS,
        "nli_scores": Nli(root).predict([tuple(p) for p in PAIRS]),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
