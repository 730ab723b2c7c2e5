"""numpy peer of examples/mc_timing.rs: the same model, vectorised over samples.

    cargo run --release -p isl-mc --example mc_timing -- 1000000 /tmp/mc_model.json
    python3 crates/isl-mc/examples/mc_timing_numpy.py /tmp/mc_model.json 1000000

Each node: intercept + sum(coef * parent) + noise, with every normal belief and noise drawn
afresh per sample (numpy's default generator, PCG64 + ziggurat normals, written in place into one
scratch buffer), nodes in topological order. Prints the best of three timings and the same
per-node-sample figures as the Rust example. numpy runs on one core (no threading in these ufuncs).
"""

import json
import sys
import time

import numpy as np


def topological(nodes):
    done, order = set(), []
    pending = list(nodes)
    while pending:
        rest = []
        for n in pending:
            if all(p in done for p in n.get("parents", {})):
                order.append(n)
                done.add(n["name"])
            else:
                rest.append(n)
        pending = rest
    return order


def run(order, n, seed):
    """In-place numpy: one scratch buffer per draw, no temporaries beyond it."""
    rng = np.random.default_rng(seed)
    vals = {}
    buf = np.empty(n)
    for node in order:
        acc = np.full(n, float(node.get("intercept", 0.0)))
        for parent, coef in node.get("parents", {}).items():
            if isinstance(coef, (int, float)):
                acc += coef * vals[parent]
                continue
            assert coef["dist"] == "normal"
            rng.standard_normal(n, out=buf)
            buf *= coef["std"]
            buf += coef["mean"]
            buf *= vals[parent]
            acc += buf
        noise = node.get("noise")
        if noise is not None:
            assert noise["dist"] == "normal"
            rng.standard_normal(n, out=buf)
            buf *= noise["std"]
            buf += noise["mean"]
            acc += buf
        vals[node["name"]] = acc
    return vals[order[-1]["name"]]


def main():
    model = json.load(open(sys.argv[1]))
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    order = topological(model["nodes"])
    nodes = len(order)
    run(order, n // 10, 0)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        out = run(order, n, 1)
        best = min(best, time.perf_counter() - t)
    per_s = n / best
    print(
        f"numpy {np.__version__} (1 core): {n} samples in {best * 1e3:.1f} ms: {per_s:.2e} samples/s, "
        f"{per_s * nodes:.2e} node-samples/s, {1e9 * best / (n * nodes):.2f} ns per node-sample; mean {out.mean():.4f}"
    )


if __name__ == "__main__":
    main()
