"""networkx on the requests of ``isl bench --mix dsep-1000-*``: the same DAG and the same 100
queries per request that isl answers over HTTP, timed in-process (no HTTP for the peer: the
ratio is conservative for isl).

    python bench/dsep_http_peer.py REQUESTS.ndjson --max-s 60   # prints JSON

Each line of REQUESTS.ndjson is one request body (``isl bench --print-requests``). The answer
is the mean time per request (100 queries) over the requests timed before ``--max-s`` ran out
(at least one), and the answers, checked against isl's by the caller.
"""
import argparse
import json
import sys
import time

import networkx as nx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("requests")
    ap.add_argument("--max-s", type=float, default=60.0)
    args = ap.parse_args()
    bodies = [json.loads(line) for line in open(args.requests) if line.strip()]
    dag = bodies[0]["dag"]
    g = nx.DiGraph()
    g.add_nodes_from(dag.get("nodes") or [])
    g.add_edges_from(tuple(e) for e in dag["edges"])
    dsep = getattr(nx, "is_d_separator", None) or nx.d_separated
    times, answers = [], []
    started = time.perf_counter()
    for body in bodies:
        assert body["dag"] == dag, "every request is about one DAG"
        t0 = time.perf_counter()
        a = [dsep(g, {q["x"]}, {q["y"]}, set(q.get("given", []))) for q in body["queries"]]
        times.append(time.perf_counter() - t0)
        answers.append(a)
        if time.perf_counter() - started > args.max_s:
            break
    times.sort()
    json.dump({"function": f"networkx.{dsep.__name__}", "networkx": nx.__version__, "requests": len(times),
               "queries_per_request": len(bodies[0]["queries"]),
               "mean_ms": 1e3 * sum(times) / len(times), "median_ms": 1e3 * times[len(times) // 2],
               "answers": answers}, sys.stdout)


if __name__ == "__main__":
    main()
