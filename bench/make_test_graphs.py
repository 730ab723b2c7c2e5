#!/usr/bin/env python3
"""Test inputs for the Python half of the causal-graph benchmark, without building isl.

Writes ``DIR/graphs.json`` in the shape the Rust bench (``causal_vs_peers generate``) writes:
hand-made graphs with known answers (front-door, M-bias, a mediator next to a confounder, a
latent parent, ...) and, with ``--random``, seeded random DAGs made by a port of
``isl_causal::generate::random_dag`` and of the bench's query/pair drawing, so the same
``(nodes, seed)`` gives the same graph, queries and pairs as the Rust side.

With ``--fake-rust``, also writes ``DIR/rust.json`` in the Rust result shape, answered by
networkx (``causal_check``): d-separation answers, and for each pair the exact list of minimal
back-door sets by brute force where the candidates are few, otherwise one minimal set found
by two graph searches, marked ``truncated``. Timings in it are placeholders. ``--corrupt`` flips the first
d-separation answer of each case and drops a set from one pair's complete list, to see
``report_causal.py`` fail.

  python3 bench/make_test_graphs.py --out bench/out/test --random 200:1 --fake-rust
  python3 bench/causal_peers.py --data bench/out/test/graphs.json --out bench/out/test/python.json
  python3 bench/report_causal.py --rust bench/out/test/rust.json \
      --python bench/out/test/python.json --data bench/out/test/graphs.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import networkx as nx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from causal_check import BackdoorOracle, build_digraph, d_separated  # noqa: E402

MASK = (1 << 64) - 1


class SplitMix64:
    """The generator of ``isl_causal::generate::SplitMix64``, bit for bit."""

    def __init__(self, seed: int):
        self.state = seed & MASK

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def next_f64(self) -> float:
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def below(self, n: int) -> int:
        return (self.next_u64() * n) >> 64


def random_dag(nodes: int, avg_parents: float, window: int, latent_share: float, seed: int) -> dict:
    """Port of ``random_dag``, returned in canonical form (names, edges, latent sorted)."""
    rng = SplitMix64(seed)
    names = [f"V{i}" for i in range(nodes)]
    edges, latent = [], []
    for i in range(nodes):
        lo = 0 if window == 0 else max(0, i - window)
        cand = i - lo
        if cand > 0:
            prob = min(avg_parents / cand, 1.0)
            for j in range(lo, i):
                if rng.next_f64() < prob:
                    edges.append([names[j], names[i]])
        if rng.next_f64() < latent_share:
            latent.append(names[i])
    return {"nodes": sorted(names), "edges": sorted(edges), "latent": sorted(set(latent))}


def random_case(nodes: int, seed: int, queries: int = 200, pairs: int = 20) -> dict:
    """Port of the Rust bench's ``generate`` for one ``(nodes, seed)``."""
    params = dict(nodes=nodes, avg_parents=2.0, window=25, latent_share=0.1, seed=seed)
    dag = random_dag(**params)
    g, latents = build_digraph(dag)
    rng = SplitMix64(seed ^ 0xD5EB)
    qs = []
    while len(qs) < queries:
        x, y = rng.below(nodes), rng.below(nodes)
        given = sorted({rng.below(nodes) for _ in range(5)})
        if x == y or x in given or y in given:
            continue
        qs.append({"x": [f"V{x}"], "y": [f"V{y}"], "given": [f"V{v}" for v in given]})
    ps = []
    while len(ps) < pairs:
        x = nodes // 4 + rng.below(nodes // 2)
        y = x + 10 + rng.below(50)
        if y >= nodes:
            continue
        xn, yn = f"V{x}", f"V{y}"
        if xn in latents or yn in latents or yn not in nx.descendants(g, xn):
            continue
        ps.append({"treatment": xn, "outcome": yn})
    return {"name": f"n{nodes}-s{seed}", "nodes": nodes, "params": json.dumps(params),
            "dag": dag, "dsep_queries": qs, "backdoor_pairs": ps}


def known_case(name: str, edges, latent, pairs, queries, expected) -> dict:
    nodes = sorted({v for e in edges for v in e})
    return {"name": name, "nodes": len(nodes),
            "dag": {"nodes": nodes, "edges": sorted(list(e) for e in edges), "latent": sorted(latent)},
            "dsep_queries": [{"x": [a], "y": [b], "given": list(c)} for a, b, c in queries],
            "backdoor_pairs": [{"treatment": x, "outcome": y} for x, y in pairs],
            "expected_sets": expected}


def known_cases() -> list[dict]:
    """Small graphs whose minimal back-door sets are known by hand (``expected_sets``, one
    list per pair, checked against the brute force when the file is written)."""
    return [
        # Front door: the confounder is latent, so no back-door set exists.
        known_case("front-door", [("U", "X"), ("U", "Y"), ("X", "M"), ("M", "Y")], ["U"],
                   [("X", "Y")], [("X", "Y", ["M"]), ("X", "U", []), ("M", "U", ["X"])], [[]]),
        # M-bias: nothing to adjust for; adjusting for M alone would open X<-A->M<-B->Y.
        known_case("m-bias", [("A", "X"), ("A", "M"), ("B", "M"), ("B", "Y"), ("X", "Y")], [],
                   [("X", "Y")], [("A", "B", []), ("A", "B", ["M"]), ("X", "B", ["M"])], [[[]]]),
        # M-bias where M also confounds X and Y: M is needed, with A or B to close the collider.
        known_case("m-bias-confounded",
                   [("A", "X"), ("A", "M"), ("B", "M"), ("B", "Y"), ("M", "X"), ("M", "Y"), ("X", "Y")],
                   [], [("X", "Y")], [("A", "Y", ["M", "B"]), ("A", "B", ["X"])], [[["A", "M"], ["B", "M"]]]),
        # A confounder U next to a mediator M (U -> M): the only back-door set is {U}; M is a
        # descendant of X, so {M} is no adjustment set although it separates X and Y once the
        # edge X -> M is removed.
        known_case("mediator-confounder", [("U", "X"), ("U", "M"), ("X", "M"), ("M", "Y")], [],
                   [("X", "Y")], [("X", "Y", ["M"]), ("U", "Y", ["M"])], [[["U"]]]),
        # A latent parent of X with an observed parent W: only Z (on L -> Z -> Y) blocks.
        known_case("latent-parent", [("W", "L"), ("L", "X"), ("L", "Z"), ("Z", "Y"), ("X", "Y")], ["L"],
                   [("X", "Y")], [("W", "Y", ["Z"]), ("X", "Y", ["Z"]), ("W", "X", [])], [[["Z"]]]),
        # Two confounding chains and a shared collider C (C is not an ancestor of X or Y).
        known_case("two-chains",
                   [("A1", "A2"), ("A2", "X"), ("A1", "Y"), ("B1", "X"), ("B1", "B2"), ("B2", "Y"),
                    ("A2", "C"), ("B2", "C"), ("X", "Y")],
                   [], [("X", "Y")], [("A2", "B2", []), ("A2", "B2", ["C"])],
                   [[["A1", "B1"], ["A1", "B2"], ["A2", "B1"], ["A2", "B2"]]]),
    ]


def fake_rust(data: dict, corrupt: bool) -> dict:
    cases = []
    for case in data["cases"]:
        g, latents = build_digraph(case["dag"])
        answers = [d_separated(g, set(q["x"]), set(q["y"]), set(q["given"])) for q in case["dsep_queries"]]
        backdoor = []
        for p in case["backdoor_pairs"]:
            o = BackdoorOracle(g, latents, p["treatment"], p["outcome"])
            sets = o.brute_force_minimal_sets(max_candidates=12)
            truncated = False
            if sets is None:
                truncated = True
                one = o.one_minimal_set()
                sets = [one] if one is not None else []
                if not sets:
                    truncated = False
            backdoor.append({"treatment": p["treatment"], "outcome": p["outcome"], "sets": sets,
                             "truncated": truncated, "per_query_ns": 1000.0})
        if corrupt and answers:
            answers[0] = not answers[0]
            for b in backdoor:
                if len(b["sets"]) > 1 and not b["truncated"]:
                    b["sets"] = b["sets"][1:]
                    break
        cases.append({"name": case["name"], "nodes": g.number_of_nodes(), "edges": g.number_of_edges(),
                      "dsep": {"per_query_ns": 1000.0, "answers": answers}, "backdoor": backdoor})
    return {"env": {"fake": "answers from networkx via bench/make_test_graphs.py; timings are placeholders"},
            "cases": cases}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="directory for graphs.json (and rust.json)")
    ap.add_argument("--random", default="", help="comma-separated NODES:SEED random cases, e.g. 200:1,1000:2")
    ap.add_argument("--no-known", action="store_true", help="leave the hand-made cases out")
    ap.add_argument("--fake-rust", action="store_true", help="also write a networkx-answered rust.json")
    ap.add_argument("--corrupt", action="store_true", help="with --fake-rust: plant a wrong answer")
    args = ap.parse_args()

    cases = [] if args.no_known else known_cases()
    for c in cases:
        g, latents = build_digraph(c["dag"])
        for p, want in zip(c["backdoor_pairs"], c["expected_sets"]):
            got = BackdoorOracle(g, latents, p["treatment"], p["outcome"]).brute_force_minimal_sets()
            if got != want:
                print(f"{c['name']}: expected {want}, brute force says {got}", file=sys.stderr)
                return 1
    for spec in filter(None, args.random.split(",")):
        nodes, seed = (int(s) for s in spec.split(":"))
        cases.append(random_case(nodes, seed))
    os.makedirs(args.out, exist_ok=True)
    data = {"cases": cases}
    with open(os.path.join(args.out, "graphs.json"), "w") as f:
        json.dump(data, f)
    if args.fake_rust:
        with open(os.path.join(args.out, "rust.json"), "w") as f:
            json.dump(fake_rust(data, args.corrupt), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
