#!/usr/bin/env python3
"""The Python half of the causal-graph benchmark: networkx and pgmpy on the Rust bench's input.

  .bench-venv/bin/python bench/causal_peers.py --data DIR/graphs.json --out DIR/python.json
      [--all-sets-timeout 10] [--minimal-timeout 10] [--hash-seed 0]

(``bench/setup-venv.sh`` makes ``.bench-venv``.) For each case of ``graphs.json`` (written by
``cargo bench -p isl-causal --bench causal_vs_peers -- generate DIR``) the graph is built once,
then:

* d-separation: ``networkx.is_d_separator`` (``d_separated`` before networkx 3.3) on every
  query, in rounds over all queries until 0.5 s and at least 5 rounds (no new round after
  ``--dsep-max-s``); the median round divided by the query count is ``per_query_ns``. pgmpy's ``DAG.is_dconnected`` is timed the same way
  (``include_latents=True``: without it pgmpy drops latent nodes from the reachable set and
  calls every latent ``y`` separated).
* back-door, per treatment/outcome pair: ``CausalInference.get_minimal_adjustment_set``
  (repeated until 0.2 s and 5 runs, at most 2 s, median) and
  ``CausalInference.get_all_backdoor_adjustment_sets`` (once, abandoned after
  ``--all-sets-timeout`` seconds). Every answer pgmpy gives is then judged, outside the timed
  code, with ``causal_check`` (networkx): is it a back-door set, is it minimal.

What pgmpy 1.1.2 computes (read from its source):

* ``get_minimal_adjustment_set(X, Y)`` removes the first edge of every proper causal path
  X -> ... -> Y (enumerating all of them with ``nx.all_simple_edge_paths``), then runs
  ``DAG.minimal_dseparator``: start from pa(X) ∪ pa(Y) (latent members replaced by their
  parents, repeatedly), return None if that does not separate, else drop members one at a time
  in set-iteration order while separation holds. Nothing excludes descendants of X, so the
  answer is often a set of mediators (a separator in the proper back-door graph, but no
  adjustment set); which separator comes out depends on string hashing, hence ``--hash-seed``.
  It raises ValueError when X and Y stay adjacent (Y -> X).
* ``get_all_backdoor_adjustment_sets(X, Y)`` returns ``frozenset()`` when the empty set
  already works (normalised here to ``[[]]``), raises ValueError when no set works (normalised
  to ``[]``), and otherwise walks the power set of all observed non-descendants of X in order
  of size, keeping each valid set that has no valid subset kept before: the result is exactly
  the inclusion-minimal back-door sets, after 2^k validity tests (k = ``all_candidates``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import signal
import statistics
import sys
import time
import warnings


def _reexec_with_hash_seed() -> None:
    """pgmpy's minimal-set answer depends on set iteration order of strings, i.e. on
    PYTHONHASHSEED: pin it (default 0) so runs are reproducible."""
    if os.environ.get("PYTHONHASHSEED") is not None:
        return
    seed = "0"
    for i, a in enumerate(sys.argv):
        if a == "--hash-seed" and i + 1 < len(sys.argv):
            seed = sys.argv[i + 1]
        elif a.startswith("--hash-seed="):
            seed = a.split("=", 1)[1]
    env = dict(os.environ, PYTHONHASHSEED=seed)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


class Timeout(BaseException):
    """Raised by SIGALRM; a BaseException so library ``except Exception`` blocks let it pass."""


def _on_alarm(signum, frame):
    raise Timeout()


def call_with_timeout(fn, timeout_s: float):
    """Runs ``fn()``; returns ``("ok", value, ns)``, ``("timeout", None, ns)`` or
    ``("error", "Type: message", ns)``. Pure-Python code (networkx, pgmpy) is interrupted at the
    next bytecode after the alarm."""
    old = signal.signal(signal.SIGALRM, _on_alarm)
    t0 = time.perf_counter_ns()
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            value = fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return "ok", value, time.perf_counter_ns() - t0
    except Timeout:
        return "timeout", None, time.perf_counter_ns() - t0
    except Exception as e:  # noqa: BLE001 - the error is the result
        return "error", f"{type(e).__name__}: {e}", time.perf_counter_ns() - t0
    finally:
        signal.signal(signal.SIGALRM, old)


def time_rounds(items, call, min_s: float = 0.5, min_rounds: int = 5, max_s: float = 20.0) -> dict:
    """Runs ``call(item)`` over all items in rounds until ``min_s`` seconds and ``min_rounds``
    rounds -- but no new round once ``max_s`` seconds have passed (networkx needs over a minute
    per round on the 1,000-node graph). The first round times each call (giving the answers and
    their spread); ``per_query_ns`` is the median over rounds of round time / item count."""
    answers, singles = [], []
    start = time.perf_counter()
    for item in items:
        t = time.perf_counter_ns()
        answers.append(call(item))
        singles.append(time.perf_counter_ns() - t)
    rounds = [sum(singles) / len(items)]
    while (time.perf_counter() - start < min_s or len(rounds) < min_rounds) and time.perf_counter() - start < max_s:
        t = time.perf_counter_ns()
        for item in items:
            call(item)
        rounds.append((time.perf_counter_ns() - t) / len(items))
    singles.sort()
    return {"answers": answers, "per_query_ns": statistics.median(rounds), "rounds": len(rounds),
            "first_round": {"min_ns": singles[0], "median_ns": statistics.median(singles), "max_ns": singles[-1]}}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sorted_sets(sets) -> list:
    return sorted(sorted(s) for s in sets)


def run_case(case: dict, args, nx, DAG, CausalInference, causal_check) -> dict:
    dag_json = case["dag"]
    g, latents = causal_check.build_digraph(dag_json)
    dsep = causal_check.d_separated

    # --- d-separation -------------------------------------------------------------------
    queries = [(set(q["x"]), set(q["y"]), set(q["given"])) for q in case["dsep_queries"]]
    out = {"name": case["name"], "nodes": g.number_of_nodes(), "edges": g.number_of_edges(),
           "latent": len(latents)}
    if queries:
        out["dsep"] = {"queries": len(queries), "function": f"networkx.{dsep.__name__}",
                       **time_rounds(queries, lambda q: dsep(g, *q), max_s=args.dsep_max_s)}
    else:
        out["dsep"] = {"queries": 0, "answers": [], "per_query_ns": None}

    # pgmpy graph: edges, then every node (isolated ones too), then the latent role.
    pdag = DAG([tuple(e) for e in dag_json.get("edges", [])])
    pdag.add_nodes_from(dag_json.get("nodes") or [])
    pdag.latents = set(latents)

    single = all(len(x) == 1 and len(y) == 1 for x, y, _ in queries)
    if single and queries and not args.skip_pgmpy_dsep:
        pq = [(next(iter(x)), next(iter(y)), sorted(z)) for x, y, z in queries]
        t = time_rounds(pq, lambda q: pdag.is_dconnected(q[0], q[1], observed=q[2], include_latents=True),
                        max_s=args.dsep_max_s)
        t["answers"] = [not a for a in t["answers"]]  # is_dconnected -> "separated"
        out["pgmpy_dsep"] = {"function": "pgmpy.base.DAG.is_dconnected(include_latents=True)", **t}

    # --- back-door ----------------------------------------------------------------------
    ci = CausalInference(pdag)
    backdoor = []
    for pair in case["backdoor_pairs"]:
        x, y = pair["treatment"], pair["outcome"]
        oracle = causal_check.BackdoorOracle(g, latents, x, y)
        rec = {"treatment": x, "outcome": y, "backdoor_exists": oracle.exists()}

        # get_minimal_adjustment_set: first call under the timeout, then repeats.
        status, value, ns = call_with_timeout(lambda: ci.get_minimal_adjustment_set(x, y), args.minimal_timeout)
        rec["minimal_status"] = status
        rec["minimal_set"] = sorted(value) if status == "ok" and value is not None else None
        rec["minimal_error"] = None if status == "ok" else ("timeout" if status == "timeout" else value)
        if status == "ok":
            times = [ns]
            start = time.perf_counter()
            while (time.perf_counter() - start < args.repeat_min_s or len(times) < 5) and \
                    time.perf_counter() - start < args.repeat_max_s:
                t = time.perf_counter_ns()
                ci.get_minimal_adjustment_set(x, y)
                times.append(time.perf_counter_ns() - t)
            rec["minimal_ns"] = statistics.median(times)
            rec["minimal_runs"] = len(times)
            if value is not None:
                rec["minimal_check"] = oracle.judge(value)
        else:
            rec["minimal_ns"] = None
            rec["minimal_elapsed_ns"] = ns

        # get_all_backdoor_adjustment_sets: once, abandoned at the timeout.
        non_de = set(pdag.nodes()) - set(latents) - oracle.de_x - {x, y}
        rec["all_candidates"] = len(non_de)
        if args.all_sets_timeout <= 0:
            rec.update(all_status="skipped", all_sets="skipped", all_ns=None)
        else:
            gc.collect()
            status, value, ns = call_with_timeout(lambda: ci.get_all_backdoor_adjustment_sets(x, y),
                                                  args.all_sets_timeout)
            rec["all_timeout_s"] = args.all_sets_timeout
            if status == "ok":
                sets = sorted_sets(value)
                if not sets:  # frozenset(): pgmpy's way of saying "the empty set works"
                    rec.update(all_status="empty_set_valid", all_sets=[[]])
                else:
                    rec.update(all_status="ok", all_sets=sets)
                rec["all_ns"] = ns
                if rec["all_sets"] != [[]]:
                    rec["all_sets_check"] = {
                        "all_valid": all(oracle.is_valid(s) for s in rec["all_sets"]),
                        "all_minimal": all(oracle.is_minimal(s) for s in rec["all_sets"]),
                    }
            elif status == "error" and value.startswith("ValueError: No valid adjustment set"):
                rec.update(all_status="no_valid_set", all_sets=[], all_ns=ns, all_error=value)
            elif status == "timeout":
                rec.update(all_status="timeout", all_sets="timeout", all_ns=None, all_elapsed_ns=ns)
            else:
                rec.update(all_status="error", all_sets=f"error: {value}", all_ns=None)
        backdoor.append(rec)
        if args.verbose:
            print(f"  {case['name']} {x}->{y}: minimal {rec['minimal_status']} "
                  f"{rec['minimal_set']} ({(rec['minimal_ns'] or 0) / 1e6:.2f} ms), "
                  f"all-sets {rec['all_status']} (k={rec['all_candidates']})", file=sys.stderr, flush=True)
    out["backdoor"] = backdoor
    return out


def main() -> int:
    _reexec_with_hash_seed()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="graphs.json written by the Rust bench")
    ap.add_argument("--out", required=True, help="where to write python.json")
    ap.add_argument("--all-sets-timeout", type=float, default=10.0,
                    help="seconds before get_all_backdoor_adjustment_sets is abandoned (0: skip it)")
    ap.add_argument("--minimal-timeout", type=float, default=10.0,
                    help="seconds before get_minimal_adjustment_set is abandoned")
    ap.add_argument("--dsep-max-s", type=float, default=20.0,
                    help="start no new d-separation round after this long (at least one is timed)")
    ap.add_argument("--repeat-min-s", type=float, default=0.2, help="repeat minimal-set runs for this long")
    ap.add_argument("--repeat-max-s", type=float, default=2.0, help="but stop repeating after this long")
    ap.add_argument("--hash-seed", default="0", help="PYTHONHASHSEED to run under, unless already set")
    ap.add_argument("--skip-pgmpy-dsep", action="store_true", help="do not time pgmpy's d-separation")
    ap.add_argument("--cases", default="", help="comma-separated case names to run (default all)")
    ap.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = ap.parse_args()

    warnings.filterwarnings("ignore")  # pgmpy's deprecation warnings on every call
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import networkx as nx
    import pgmpy
    from pgmpy.base import DAG
    from pgmpy.inference import CausalInference

    import causal_check

    with open(args.data) as f:
        data = json.load(f)
    wanted = set(filter(None, args.cases.split(",")))
    env = {
        "python": platform.python_version(),
        "networkx": nx.__version__,
        "pgmpy": pgmpy.__version__,
        "cpu": cpu_model(),
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
        "all_sets_timeout_s": args.all_sets_timeout,
        "minimal_timeout_s": args.minimal_timeout,
    }
    cases = []
    for case in data["cases"]:
        if wanted and case["name"] not in wanted:
            continue
        t = time.perf_counter()
        cases.append(run_case(case, args, nx, DAG, CausalInference, causal_check))
        c = cases[-1]
        print(f"{c['name']}: networkx d-sep {c['dsep']['per_query_ns'] or 0:.0f} ns/query, "
              f"{len(c['backdoor'])} back-door pairs, {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"env": env, "cases": cases}, f, indent=1)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
