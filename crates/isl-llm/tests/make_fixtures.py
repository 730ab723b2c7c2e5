"""Writes tests/data/llama_cpp.json: llama.cpp's token ids, greedy tokens and logits on the
default GGUF model, which crates/isl-llm/tests/llama_cpp.rs checks isl-llm against.

Run once (llama-cpp-python builds llama.cpp from source: 10-25 minutes on 2 cores):

    python3 -m venv .llama-venv && .llama-venv/bin/pip install 'llama-cpp-python[server]==0.3.36'
    scripts/fetch-models.sh
    .llama-venv/bin/python crates/isl-llm/tests/make_fixtures.py ~/.cache/isl/models/smollm2-135m-instruct/model.gguf
"""
import json
import random
import sys
from pathlib import Path

import llama_cpp
import numpy as np

GGUF = sys.argv[1]
OUT = Path(__file__).parent / "data" / "llama_cpp.json"


def strings():
    base = [
        "", " ", "  ", "\n", "\n\n\n", "\t", " \t \n ", "Hello", "Hello world", " Hello world",
        "Hello  world", "Hello   world   ", "hello, world!", "HELLO WORLD", "The quick brown fox jumps over the lazy dog.",
        "I'm sure you've seen it; they'll say we'd done it.", "don't DON'T Don't", "1", "12", "123", "1234567890",
        "3.14159", "-42", "1,000,000", "2026-12-07T15:20:17Z", "0x7fff_ffff", "1e-9", "v1.2.3",
        "café", "naïve résumé", "Ελληνικά", "Русский текст", "日本語のテキスト", "中文文本测试", "한국어",
        "عربي", "עברית", "हिन्दी", "ภาษาไทย", "emoji 😀🎉🚀", "👨‍👩‍👧‍👦", "🇫🇷🇩🇪", "mixed 日本 and English",
        "ﬁ ligature", "Ωmega µ ° ± × ÷", "\u00a0non-breaking", "zero\u200bwidth", "tab\tseparated\tvalues",
        "def f(x):\n    return x * 2\n", "fn main() { println!(\"hi\"); }", "for (int i = 0; i < n; ++i) {}",
        "<div class=\"a\">b</div>", "SELECT * FROM t WHERE id = 1;", "{\"a\": [1, 2, {\"b\": null}]}",
        "    indented\n        more", "a\r\nb\r\n", "trailing spaces   ", "   leading spaces", "!!!???...",
        "<|im_start|>user\nHi<|im_end|>\n", "<|im_start|>assistant\n", "<|endoftext|>", "text<|im_end|>more",
        "<|im_start|><|im_end|>", "<repo_name>x", "a<|im_start|>b", "http://example.invalid/path?q=1&r=2",
        "user@example.invalid", "C:\\Windows\\System32", "~/.config/isl", "$HOME/bin:$PATH", "a+b=c",
        "αβγ δεζ", "Straße", "İstanbul", "ǅemal", "x²+y²=z²", "∀x∈ℝ: x²≥0", "→ ← ↑ ↓", "™ © ®",
        "'quoted'", "\"double\"", "“curly” ‘quotes’", "em—dash en–dash", "…", "a\u0301 (combining)",
        "\\n literal", "null\x00byte", "bell\x07", "   \n   \n", "a" * 50, "ab" * 30, " " * 17, "\n" * 9,
        "The year 1999 and 2000", "Model-135M-Instruct.Q4_1.gguf", "snake_case camelCase PascalCase",
        "e.g. i.e. etc.", "Mr. Smith's dog", "it's 5 o'clock", "rock'n'roll", "'s 't 're 've 'm 'll 'd",
        "'S 'T 'RE", "😀 😀  😀", "🙂text🙂", "a🙂b", "\u2028line sep", "ーカタカナ", "ｆｕｌｌｗｉｄｔｈ",
    ]
    rng = random.Random(20261207)
    words = ["the", "model", "causal", "graph", "Monte", "Carlo", "tokens", "日本", "café", "42", "3.5", "—",
             "\n", "  ", "\t", "(", ")", "{", "}", ":", ";", "😀", "é", "ß", "<|im_end|>", "x_1", "'s", "don't"]
    while len(base) < 230:
        n = rng.randint(1, 12)
        base.append("".join(rng.choice(words) + rng.choice(["", " ", " ", "  ", "\n"]) for _ in range(n)))
    return base


PROMPTS = [
    "What is the capital of France?", "Write a haiku about the sea.", "Explain what a causal graph is.",
    "List three prime numbers.", "Translate 'good morning' into Spanish.", "What is 2 + 2?",
    "Give me a tip for writing clean code.", "Who wrote Romeo and Juliet?", "Describe a cat in one sentence.",
    "What does DNA stand for?", "Name a planet in our solar system.", "How do I boil an egg?",
    "What is the opposite of hot?", "Write a Python function that adds two numbers.", "Why is the sky blue?",
    "Suggest a name for a dog.", "What is machine learning?", "Summarise the water cycle.",
    "What colour is a banana?", "Tell me a fun fact about octopuses.", "How many days are in a week?",
    "What is the boiling point of water in Celsius?", "Recommend a book for a long flight.", "Define the word 'serendipity'.",
]


def chatml(user):
    return (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )


def fnv1a64(values):
    """FNV-1a (64-bit) of the little-endian bytes of an f32 array: a compact exact fingerprint."""
    h = 0xcbf29ce484222325
    for b in np.asarray(values, dtype="<f4").tobytes():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


# Raw prompts whose full next-token logits are fingerprinted: after the prompt (one batch) and
# after each of 6 greedy decode steps (one token each), covering ggml's one-token and
# multi-token attention orders, short rows and rows past 256 positions.
LOGIT_PROMPTS = [
    "The", "The cat", "The cat sat", "The cat sat on the mat and looked at the dog.",
    chatml("What is the capital of France?"),
    " ".join(["The history of the river is long and full of surprises, as the old maps show."] * 18),
]


def main():
    m = llama_cpp.Llama(GGUF, n_ctx=2048, n_threads=2, verbose=False, logits_all=True)
    toks = [{"text": s, "ids": m.tokenize(s.encode("utf-8"), add_bos=False, special=True)} for s in strings()]
    greedy = []
    for p in PROMPTS:
        prompt = chatml(p)
        ids = m.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        m.reset()
        m.eval(ids)
        first = np.array(m.scores[len(ids) - 1], dtype=np.float32)
        top = [int(i) for i in np.argsort(-first, kind="stable")[:20]]
        out = []
        for _ in range(32):
            nxt = int(np.argmax(np.array(m.scores[m.n_tokens - 1])))
            out.append(nxt)
            m.eval([nxt])
        greedy.append({"prompt": prompt, "prompt_ids": ids, "tokens": out,
                       "top_logits": [[i, float(first[i])] for i in top]})
    logits = []
    for text in LOGIT_PROMPTS:
        ids = m.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        m.reset()
        m.eval(ids)
        steps, hashes, tokens = [], [], []
        for step in range(7):
            row = np.array(m.scores[m.n_tokens - 1], dtype=np.float32)
            hashes.append(fnv1a64(row))
            if step == 0:
                steps = [[int(i), float(row[i])] for i in range(0, len(row), 997)]
            if step < 6:
                nxt = int(np.argmax(row))
                tokens.append(nxt)
                m.eval([nxt])
        logits.append({"prompt_ids": ids, "tokens": tokens, "fnv1a64": hashes, "sample": steps})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "generator": f"llama-cpp-python {llama_cpp.__version__}, n_threads=2, flash_attn off, f16 KV cache",
        "gguf_sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "tokenize": toks, "greedy": greedy, "logits": logits}, ensure_ascii=False, indent=0) + "\n")
    print(f"wrote {OUT}: {len(toks)} strings, {len(greedy)} prompts, {len(logits)} logit fingerprints")


if __name__ == "__main__":
    main()
