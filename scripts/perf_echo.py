#!/usr/bin/env python3
"""Writes the echo parts of docs/perf.md from peer-bench echo raw logs.

Usage: perf_echo.py RAW_LOG [RAW_LOG...] [--versions FILE] [--out docs/perf.md]

RAW_LOG files hold the blocks ../shared/peer-bench/echo/run_echo.sh appends
(labels echo.<impl>.c<conns>.s<size> and echo_idle.<impl>); scripts/
perf_echo.sh makes them, and renames the labels of its spin variants
(echo.c_spin<N>.*). For each label the newest batch counts; a cell is the
median (min-max) of that batch's successful runs.

Only the regions between <!-- BEGIN generated: echo_NAME --> and
<!-- END generated: echo_NAME --> of the document are replaced (NAME =
runinfo, table, targets, spin).
"""
import argparse
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from perf_table import Results, num, parse, replace  # noqa: E402

IMPLS = ["c", "c_epoll", "go", "erl_active100", "erl_passive"]
HEAD = {"c": "ambitious", "c_epoll": "C epoll", "go": "Go net",
        "erl_active100": "Erlang {active,100}", "erl_passive": "Erlang passive"}
POINTS = [(1, 64), (1, 512), (100, 64), (100, 512), (1000, 64), (1000, 512)]
METRICS = [
    ("server CPU per request, µs", "srv_cpu_us_per_req", 1, 1),
    ("median round trip, µs", "p50_us", 1, 0),
    ("p99 round trip, µs", "p99_us", 1, 0),
    ("requests/s (thousands)", "rps", 1e-3, 1),
    ("server CPU, % of one CPU", "srv_cpu_pct", 1, 0),
]


def fmt(v, d):
    return f"{v:,.{d}f}"


def cell(res, label, key, scale, digits):
    v = [x * scale for x in res.values(label, key)]
    if not v:
        return "–"
    m = statistics.median(v)
    return fmt(m, digits) if len(v) == 1 else f"{fmt(m, digits)} ({fmt(min(v), digits)}–{fmt(max(v), digits)})"


def gen_table(res):
    out = []
    for title, key, scale, digits in METRICS:
        out.append(f"**{title}**")
        out.append("")
        out.append("| conns × size | " + " | ".join(HEAD[i] for i in IMPLS) + " |")
        out.append("|---|" + "---|" * len(IMPLS))
        for conns, size in POINTS:
            cells = [cell(res, f"echo.{i}.c{conns}.s{size}", key, scale, digits) for i in IMPLS]
            out.append(f"| {conns} × {size} B | " + " | ".join(cells) + " |")
        out.append("")
    out.append("**10,000 idle connections: server RSS per connection, bytes** "
               "(beyond the kernel's socket buffers, which are not in a process's RSS)")
    out.append("")
    out.append("| " + " | ".join(HEAD[i] for i in IMPLS) + " |")
    out.append("|" + "---|" * len(IMPLS))
    out.append("| " + " | ".join(cell(res, f"echo_idle.{i}", "bytes_per_conn", 1, 0)
                                  for i in IMPLS) + " |")
    out.append("")
    out.append("Each cell: median (min–max) over the runs of the newest batch. Client and "
               "server share the 2 vCPUs, so from 100 connections on requests/s is bounded "
               "by the machine: compare CPU per request.")
    return "\n".join(out)


def target(desc, ours, peer, factor, peer_name, unit):
    """ours must be ≤ factor × peer (lower is better)."""
    if ours is None or peer is None:
        return (desc, "–", "–", "–", "pending")
    limit = factor * peer
    ratio = ours / peer if peer > 0 else float("inf")
    met = ours <= limit
    return (desc, f"{ours:,.1f} {unit}", f"{peer:,.1f} {unit} ({peer_name})",
            f"{ratio:.2f}× (needed ≤ {factor:g}×)", "**met**" if met else "not met")


def gen_targets(res):
    rows = []
    for conns, size in POINTS:
        ours = res.median(f"echo.c.c{conns}.s{size}", "srv_cpu_us_per_req")
        for impl, factor in (("c_epoll", 1.15), ("go", 1.0), ("erl_active100", 0.8)):
            peer = res.median(f"echo.{impl}.c{conns}.s{size}", "srv_cpu_us_per_req")
            rows.append(target(f"CPU per request at {conns} × {size} B ≤ {factor:g}× {HEAD[impl]}",
                               ours, peer, factor, HEAD[impl], "µs"))
    for size in (64, 512):
        rows.append(target(f"p99 at 1000 × {size} B ≤ Go's",
                           res.median(f"echo.c.c1000.s{size}", "p99_us"),
                           res.median(f"echo.go.c1000.s{size}", "p99_us"), 1.0, "Go net", "µs"))
    for size in (64, 512):
        rows.append(target(f"1-connection median at {size} B ≤ the C epoll baseline's",
                           res.median(f"echo.c.c1.s{size}", "p50_us"),
                           res.median(f"echo.c_epoll.c1.s{size}", "p50_us"), 1.0, "C epoll",
                           "µs"))
    idle = res.median("echo_idle.c", "bytes_per_conn")
    rows.append(("10,000 idle connections ≤ 2 KiB each",
                 "–" if idle is None else f"{idle:,.0f} B", "2,048 B", "",
                 "pending" if idle is None else ("**met**" if idle <= 2048 else "not met")))
    out = ["| target | ours | limit's base | ratio | verdict |", "|---|---|---|---|---|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def gen_spin(res):
    """The 1-connection cases under spin settings (perf_echo.sh's SPINS)."""
    variants = sorted({m.group(1) for lab in res.newest
                       for m in [re.fullmatch(r"echo\.c_spin(\w+)\.c1\.s64", lab)] if m},
                      key=lambda v: (v != "off", int(v) if v.isdigit() else 0))
    if not variants:
        return "(no spin variants in this run)"
    out = ["| idle spin bound | median µs (64 B) | p99 µs (64 B) | CPU µs/request (64 B) | "
           "median µs (512 B) | CPU µs/request (512 B) |", "|---|---|---|---|---|---|"]
    for v in variants + ["default"]:
        lab = "echo.c" if v == "default" else f"echo.c_spin{v}"
        name = "default (200 µs)" if v == "default" else ("off" if v == "off" else f"{v} µs")
        out.append(f"| {name} | " + " | ".join([
            cell(res, f"{lab}.c1.s64", "p50_us", 1, 0), cell(res, f"{lab}.c1.s64", "p99_us", 1, 0),
            cell(res, f"{lab}.c1.s64", "srv_cpu_us_per_req", 1, 1),
            cell(res, f"{lab}.c1.s512", "p50_us", 1, 0),
            cell(res, f"{lab}.c1.s512", "srv_cpu_us_per_req", 1, 1)]) + " |")
    base = res.median("echo.c_epoll.c1.s64", "p50_us")
    cpu = res.median("echo.c_epoll.c1.s64", "srv_cpu_us_per_req")
    if base is not None and cpu is not None:
        out.append("")
        out.append(f"C epoll baseline in the same run: median {base:,.0f} µs, "
                   f"{cpu:,.1f} µs of server CPU per request (64 B).")
    return "\n".join(out)


def gen_runinfo(res, versions):
    out = []
    batches = sorted({res.newest[lab] for lab in res.newest if lab.startswith("echo")})
    if batches:
        out.append(f"- batches: {', '.join(batches)}")
    loads = [num(b.get("load")) for b in res.blocks
             if b.get("label", "").startswith("echo") and b.get("batch") == res.newest.get(b.get("label"))]
    loads = [x for x in loads if x is not None]
    if loads:
        out.append(f"- 1-minute load average when a case started: median "
                   f"{statistics.median(loads):.2f}, max {max(loads):.2f} (2 vCPUs, shared)")
    if versions and os.path.exists(versions):
        for line in open(versions):
            line = line.strip()
            if line.startswith(("kernel", "Model name", "CPU(s)", "otp", "go version", "gcc",
                                "c_epoll threads")):
                out.append(f"- {' '.join(line.split())}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--versions")
    ap.add_argument("--out")
    a = ap.parse_args()
    res = Results(parse(a.logs))
    parts = {"echo_runinfo": gen_runinfo(res, a.versions), "echo_table": gen_table(res),
             "echo_targets": gen_targets(res), "echo_spin": gen_spin(res)}
    if not a.out:
        for body in parts.values():
            print(body + "\n")
        return
    doc = open(a.out).read()
    for name, body in parts.items():
        doc = replace(doc, name, body)
    with open(a.out, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    main()
