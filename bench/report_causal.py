#!/usr/bin/env python3
"""Compares isl's causal-graph results with networkx/pgmpy and prints a Markdown section.

  python3 bench/report_causal.py --rust DIR/rust.json --python DIR/python.json [--data DIR/graphs.json]

Agreement checked:

* d-separation: isl's answers equal networkx's, query by query (and pgmpy's, when timed).
* back-door, per pair:
  - pgmpy's ``get_minimal_adjustment_set``: ``contained`` when it is one of isl's sets;
    ``not contained (truncated list)`` when isl's list was cut; ``pgmpy invalid`` when
    ``causal_peers.py`` found pgmpy's set is no back-door set (e.g. it holds a descendant of
    the treatment) -- a pgmpy defect, not a disagreement with isl; ``pgmpy none`` when pgmpy
    found nothing and isl found nothing either; otherwise ``MISMATCH``.
  - pgmpy's ``get_all_backdoor_adjustment_sets``, when it finished: its inclusion-minimal
    members must equal isl's list (isl's list a subset of them when truncated).
  - whether any back-door set exists (networkx, recorded by ``causal_peers.py``) must agree with
    isl's list being non-empty.
  - with ``--data``, every set isl returned is checked with networkx to be a back-door set and
    inclusion-minimal.

Exits 1 on any MISMATCH, 2 on unusable input. Runs on the plain interpreter unless ``--data``
is given (which needs networkx, e.g. ``.bench-venv/bin/python``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys


def fmt_ns(ns) -> str:
    if ns is None:
        return "–"
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def fmt_ratio(num, den) -> str:
    if not num or not den:
        return "–"
    r = num / den
    return f"{r:,.0f}×" if r >= 100 else f"{r:.1f}×"


def censored_median(values, cap_ns):
    """Median where ``None`` stands for a run abandoned at ``cap_ns``: returns the median with
    abandoned runs counted as ``cap_ns``, and whether it is only a lower bound."""
    if not values:
        return None, False
    vals = sorted((v, False) if v is not None else (cap_ns, True) for v in values)
    n = len(vals)
    mid = [vals[n // 2]] if n % 2 else [vals[n // 2 - 1], vals[n // 2]]
    return sum(v for v, _ in mid) / len(mid), any(c for _, c in mid)


def minimal_members(sets) -> set:
    fs = {frozenset(s) for s in sets}
    return {s for s in fs if not any(o < s for o in fs)}


def show_sets(sets, limit: int = 4) -> str:
    items = sorted(sorted(s) for s in sets)
    text = ", ".join("{" + ", ".join(s) + "}" for s in items[:limit])
    return text + (f", … ({len(items)} in all)" if len(items) > limit else "")


def compare_pair(r: dict, p: dict, oracle_fn) -> dict:
    """Verdicts for one treatment/outcome pair."""
    rust_sets = {frozenset(s) for s in r["sets"]}
    truncated = bool(r.get("truncated"))
    notes, mismatches = [], []
    label = f"{r['treatment']}→{r['outcome']}"

    # Does a back-door set exist at all?
    exists = p.get("backdoor_exists")
    if exists is not None and exists != bool(rust_sets):
        mismatches.append(f"{label}: networkx says a back-door set {'exists' if exists else 'does not exist'}, "
                          f"isl listed {len(rust_sets)}")

    # pgmpy's minimal set.
    status = p.get("minimal_status", "ok")
    mset = p.get("minimal_set")
    check = p.get("minimal_check") or {}
    if status == "timeout":
        minimal = "pgmpy timeout"
    elif status == "error":
        minimal = "pgmpy error"
        notes.append(f"{label}: pgmpy get_minimal_adjustment_set raised {p.get('minimal_error')}")
    elif mset is None:
        if not rust_sets:
            minimal = "pgmpy none (agrees)"
        elif exists:
            minimal = "pgmpy none (incomplete)"
            notes.append(f"{label}: pgmpy returned None although back-door sets exist (isl: {show_sets(rust_sets)})")
        else:
            minimal = "MISMATCH"
            mismatches.append(f"{label}: pgmpy returned None, isl listed {show_sets(rust_sets)}")
    elif check and not check.get("valid_backdoor", True):
        why = "; ".join(f"{k.replace('_', ' ')}: {', '.join(v)}" for k, v in check.items()
                        if isinstance(v, list)) or "leaves a back-door path open"
        if frozenset(mset) in rust_sets:
            minimal = "MISMATCH"
            mismatches.append(f"{label}: isl lists {{{', '.join(mset)}}}, which networkx finds is no "
                              f"back-door set ({why})")
        else:
            minimal = "pgmpy invalid"
            notes.append(f"{label}: pgmpy's set {{{', '.join(mset)}}} is no back-door set ({why})")
    elif frozenset(mset) in rust_sets:
        minimal = "contained"
    elif check and check.get("inclusion_minimal") is False:
        minimal = "pgmpy not minimal"
        notes.append(f"{label}: pgmpy's set {{{', '.join(mset)}}} is valid but not inclusion-minimal")
    elif truncated:
        minimal = "not contained (truncated list)"
    else:
        minimal = "MISMATCH"
        mismatches.append(f"{label}: pgmpy's minimal set {{{', '.join(mset)}}} (a valid minimal back-door set "
                          f"per networkx) is missing from isl's complete list {show_sets(rust_sets)}")

    # pgmpy's all-sets.
    all_status = p.get("all_status")
    if all_status in ("ok", "empty_set_valid", "no_valid_set"):
        pg = minimal_members(p["all_sets"])
        if truncated:
            if rust_sets <= pg:
                all_verdict = "isl ⊆ pgmpy (truncated)"
            else:
                all_verdict = "MISMATCH"
                mismatches.append(f"{label}: isl sets not found by pgmpy's exhaustive search: "
                                  f"{show_sets(rust_sets - pg)}")
        elif pg == rust_sets:
            all_verdict = "equal"
        else:
            all_verdict = "MISMATCH"
            mismatches.append(f"{label}: all minimal sets differ; only isl: {show_sets(rust_sets - pg) or '–'}; "
                              f"only pgmpy: {show_sets(pg - rust_sets) or '–'}")
    else:
        all_verdict = all_status or "missing"

    # Independent check of isl's own sets.
    if oracle_fn is not None:
        oracle = oracle_fn(r["treatment"], r["outcome"])
        # The first CHECKED_SETS sets of each pair (all of them on small lists) keep the check
        # to a minute on 1,000-node graphs.
        for s in r["sets"][:CHECKED_SETS]:
            j = oracle.judge(s)
            if not j["valid_backdoor"] or not j["inclusion_minimal"]:
                mismatches.append(f"{label}: isl's set {{{', '.join(s)}}} fails the networkx check: {j}")

    return {"minimal": minimal, "all": all_verdict, "notes": notes, "mismatches": mismatches}


CHECKED_SETS = 25


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rust", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--data", help="graphs.json: also check every isl set with networkx")
    args = ap.parse_args()
    try:
        with open(args.rust) as f:
            rust = json.load(f)
        with open(args.python) as f:
            py = json.load(f)
    except (OSError, ValueError) as e:
        print(f"report_causal: {e}", file=sys.stderr)
        return 2
    graphs = {}
    if args.data:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from causal_check import BackdoorOracle, build_digraph

        with open(args.data) as f:
            for c in json.load(f)["cases"]:
                graphs[c["name"]] = build_digraph(c["dag"])

    py_cases = {c["name"]: c for c in py["cases"]}
    env_r, env_p = rust.get("env", {}), py.get("env", {})
    minimal_cap_ns = float(env_p.get("minimal_timeout_s") or 0) * 1e9
    lines = ["## Causal graphs: isl vs networkx and pgmpy", ""]
    lines.append(
        f"isl-causal {env_r.get('isl_causal', '?')} (max {env_r.get('max_sets', '?')} sets per pair); "
        f"Python {env_p.get('python', '?')}, networkx {env_p.get('networkx', '?')}, pgmpy {env_p.get('pgmpy', '?')}; "
        f"CPU {env_p.get('cpu', '?')}. Single thread; times are medians. "
        f"pgmpy calls abandoned after {env_p.get('minimal_timeout_s', '?')} s (minimal set) and "
        f"{env_p.get('all_sets_timeout_s', '?')} s (all sets) per pair; an abandoned minimal-set call "
        f"counts as taking the limit, making the median a lower bound (\">\").")
    lines.append("")

    dsep_rows, bd_rows, agree_rows, details = [], [], [], []
    total_mismatch = 0
    missing = []
    for rc in rust["cases"]:
        name = rc["name"]
        pc = py_cases.get(name)
        if pc is None:
            missing.append(name)
            continue
        mism: list[str] = []
        # d-separation
        ra, pa = rc["dsep"]["answers"], pc["dsep"]["answers"]
        if len(ra) != len(pa):
            mism.append(f"{name}: {len(ra)} isl d-separation answers vs {len(pa)} networkx")
            dsep_agree = "count differs"
        else:
            bad = [i for i, (a, b) in enumerate(zip(ra, pa)) if a != b]
            for i in bad[:5]:
                mism.append(f"{name}: d-separation query #{i}: isl {ra[i]}, networkx {pa[i]}")
            if len(bad) > 5:
                mism.append(f"{name}: … {len(bad) - 5} more d-separation disagreements")
            dsep_agree = f"{len(ra) - len(bad)}/{len(ra)}"
        pg_d = pc.get("pgmpy_dsep")
        if pg_d and pg_d["answers"] != pa:
            n_bad = sum(a != b for a, b in zip(pg_d["answers"], pa))
            details.append(f"- {name}: pgmpy's d-separation disagrees with networkx on {n_bad} queries")
        fr = pc["dsep"].get("first_round")
        if fr and fr["max_ns"] > 20 * fr["median_ns"]:
            details.append(f"- {name}: networkx single d-separation queries (first round) take from "
                           f"{fmt_ns(fr['min_ns'])} to {fmt_ns(fr['max_ns'])}, median {fmt_ns(fr['median_ns'])}; "
                           f"the per-query time above is the mean over a round "
                           f"({pc['dsep'].get('rounds', '?')} round(s) timed)")
        rn, nn = rc["dsep"]["per_query_ns"], pc["dsep"]["per_query_ns"]
        pn = pg_d["per_query_ns"] if pg_d else None
        dsep_rows.append(f"| {name} | {rc.get('nodes', pc.get('nodes'))} | {rc.get('edges', pc.get('edges'))} | "
                         f"{len(ra)} | {fmt_ns(rn)} | {fmt_ns(nn)} | {fmt_ratio(nn, rn)} | {fmt_ns(pn)} | "
                         f"{fmt_ratio(pn, rn)} |")

        # back-door
        oracle_fn = None
        if name in graphs:
            g, lat = graphs[name]
            oracle_fn = lambda x, y, g=g, lat=lat: BackdoorOracle(g, lat, x, y)  # noqa: E731
        pp = {(b["treatment"], b["outcome"]): b for b in pc["backdoor"]}
        verdicts, rust_ns, pg_ns = [], [], []
        all_finished, all_timeout, all_ns = 0, 0, []
        trunc = 0
        for rb in rc["backdoor"]:
            key = (rb["treatment"], rb["outcome"])
            pb = pp.get(key)
            rust_ns.append(rb["per_query_ns"])
            trunc += bool(rb.get("truncated"))
            if pb is None:
                mism.append(f"{name}: pair {key} missing from python.json")
                continue
            v = compare_pair(rb, pb, oracle_fn)
            verdicts.append(v)
            mism += [f"{name}: {m}" for m in v["mismatches"]]
            details += [f"- {name}: {n}" for n in v["notes"]]
            if pb.get("minimal_status") == "ok":
                pg_ns.append(pb["minimal_ns"])
            elif pb.get("minimal_status") == "timeout":
                pg_ns.append(None)
            if pb.get("all_status") in ("ok", "empty_set_valid", "no_valid_set"):
                all_finished += 1
                all_ns.append(pb["all_ns"])
            elif pb.get("all_status") == "timeout":
                all_timeout += 1
        n_pairs = len(rc["backdoor"])
        r_med = statistics.median(rust_ns) if rust_ns else None
        # pgmpy runs abandoned at the timeout count as taking the timeout: the median (and the
        # ratio) is then a lower bound, shown as "> ...".
        p_med, censored = censored_median(pg_ns, minimal_cap_ns)
        ratio = fmt_ratio(p_med, r_med)
        if censored:
            ratio = "> " + ratio
        pg_to = sum(v["minimal"] == "pgmpy timeout" for v in verdicts)
        all_txt = f"{all_finished} done" + (f" (median {fmt_ns(statistics.median(all_ns))})" if all_ns else "")
        all_txt += f", {all_timeout} timeout" if all_timeout else ""
        bd_rows.append(f"| {name} | {n_pairs} | {fmt_ns(r_med)} | {'> ' if censored else ''}{fmt_ns(p_med)}"
                       f"{f' ({pg_to} timeout)' if pg_to else ''} | {ratio} | {all_txt} | {trunc} |")

        def count(field, val):
            return sum(v[field] == val for v in verdicts)

        minimal_summary = ", ".join(f"{k} {n}" for k in
                                    ("contained", "not contained (truncated list)", "pgmpy invalid",
                                     "pgmpy not minimal", "pgmpy none (agrees)", "pgmpy none (incomplete)",
                                     "pgmpy timeout", "pgmpy error", "MISMATCH")
                                    if (n := count("minimal", k)))
        all_summary = ", ".join(f"{k} {n}" for k in
                                ("equal", "isl ⊆ pgmpy (truncated)", "timeout", "error", "skipped", "MISMATCH")
                                if (n := count("all", k)))
        agree_rows.append(f"| {name} | {dsep_agree} | {minimal_summary or '–'} | {all_summary or '–'} | "
                          f"{'**' + str(len(mism)) + '**' if mism else 0} |")
        details += [f"- **MISMATCH** {m}" for m in mism]
        total_mismatch += len(mism)
    for name in missing:
        details.append(f"- **MISMATCH** case {name} missing from python.json")
        total_mismatch += 1

    lines += ["### d-separation (per query)", "",
              "| case | nodes | edges | queries | isl | networkx `is_d_separator` | networkx / isl "
              "| pgmpy `is_dconnected` | pgmpy / isl |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|", *dsep_rows, ""]
    lines += ["### Back-door adjustment sets (per treatment/outcome pair)", "",
              "isl lists every inclusion-minimal back-door set (up to the cap); pgmpy's "
              "`get_minimal_adjustment_set` returns one set; its `get_all_backdoor_adjustment_sets` "
              "tries every subset of the treatment's observed non-descendants.", "",
              "| case | pairs | isl (all minimal sets) | pgmpy minimal set | pgmpy / isl | "
              "pgmpy all sets | isl lists truncated |",
              "|---|---:|---:|---:|---:|---|---:|", *bd_rows, ""]
    lines += ["### Agreement", "",
              "| case | d-separation answers equal | pgmpy minimal set vs isl | pgmpy all sets vs isl | mismatches |",
              "|---|---:|---|---|---:|", *agree_rows, ""]
    if details:
        lines += details + [""]
    lines.append(f"**{total_mismatch} mismatch(es).**" if total_mismatch else "No mismatches.")
    print("\n".join(lines))
    return 1 if total_mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
