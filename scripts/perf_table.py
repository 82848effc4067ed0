#!/usr/bin/env python3
"""Writes the generated parts of docs/perf.md from peer-bench raw logs.

Usage: perf_table.py RAW_LOG [RAW_LOG...] [--versions FILE] [--out docs/perf.md]

RAW_LOG files are results/raw.log files of ../shared/peer-bench/run_all.sh
(blocks "=== CASE label=... run=... rc=... batch=...", a RESULT line and the
`/usr/bin/time -v` report). For each case label the newest batch counts, and
a cell is the median (min-max) of that batch's successful runs (rc=0).

docs/perf.md keeps its hand-written text; only the regions between
<!-- BEGIN generated: NAME --> and <!-- END generated: NAME --> are replaced
(NAME = table, targets, runinfo). A missing file gets a skeleton.
"""
import argparse
import os
import re
import statistics
import sys

PEERS = ["erl", "go", "caf"]
PEER_NAMES = {"erl": "Erlang", "go": "Go", "caf": "CAF"}
TIME_KEYS = {
    "Maximum resident set size (kbytes)": "time_maxrss_kb",
    "Minor (reclaiming a frame) page faults": "time_minflt",
    "User time (seconds)": "time_user_s",
    "System time (seconds)": "time_sys_s",
}


def parse(paths):
    blocks = []
    for path in paths:
        cur = None
        for line in open(path, encoding="utf-8", errors="replace"):
            line = line.rstrip("\n")
            if line.startswith("=== CASE "):
                cur = dict(re.findall(r"(\w+)=(\S+)", line))
                cur["kv"] = {}
                blocks.append(cur)
            elif cur is None:
                continue
            elif line.startswith("RESULT "):
                cur["kv"].update(re.findall(r"(\w+)=(\S+)", line))
            elif line.startswith("LOAD "):
                cur["load"] = line[5:].split()[0]
            elif line.startswith("TIME "):
                body = line[5:].strip()
                if ": " in body:
                    k, v = body.rsplit(": ", 1)
                    if k in TIME_KEYS:
                        cur["kv"][TIME_KEYS[k]] = v
    return blocks


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class Results:
    def __init__(self, blocks):
        self.blocks = blocks
        self.newest = {}
        for b in blocks:
            lab = b.get("label", "")
            self.newest[lab] = max(self.newest.get(lab, ""), b.get("batch", ""))

    def runs(self, label):
        return [b for b in self.blocks
                if b.get("label") == label and b.get("batch", "") == self.newest.get(label)]

    def values(self, label, key):
        vals = [num(b["kv"].get(key)) for b in self.runs(label) if b.get("rc") == "0"]
        return [v for v in vals if v is not None]

    def median(self, label, key):
        v = self.values(label, key)
        return statistics.median(v) if v else None


# (title, {col: label}, key, scale, digits, lower_is_better, note)
def labels(row):
    """Case labels of one row for c, erl, go, caf."""
    special = {
        "ring.1": {"c": "c.ring.T1", "erl": "erl.ring.S1", "go": "go.ring.P1", "caf": "caf.ring.T1"},
        "pingpong.1": {"c": "c.pingpong.T1", "erl": "erl.pingpong.S1",
                       "go": "go.pingpong.P1", "caf": "caf.pingpong.T1"},
        "m2o.v": {"erl": "erl.m2o.offheap", "go": "go.m2o.unbuf"},
        "spawn_handler": {"c": "c.spawn_handler", "erl": "erl.spawn", "go": "go.spawn",
                          "caf": "caf.spawn"},
        "ring.handler": {"c": "c.ring.handler", "erl": "erl.ring", "go": "go.ring",
                         "caf": "caf.ring"},
    }
    if row in special:
        return special[row]
    if row.startswith("call.c"):
        k = row[len("call.c"):]
        return {"c": f"c.call.c{k}", "erl": f"erl.gen_server.c{k}", "go": f"go.call.c{k}",
                "caf": f"caf.call.c{k}"}
    return {c: f"{c}.{row}" for c in ["c"] + PEERS}


ROWS = [
    ("1. spawn 1M stackful, total ms (cold)", "spawn", "total_ms", 1, 0, True,
     "spawn all, RSS sample, 1 msg each, wait until all exit; fresh OS process"),
    ("1. spawn 1M stackful, total ms (warm: best of rounds 2-3)", "spawn", "warm_total_ms", 1, 0,
     True, "same OS process again"),
    ("1. spawn 1M stackful, spawn phase ms (cold)", "spawn", "spawn_ms", 1, 0, True,
     "ours: the spawn loop only; children run into their receive later (settle)"),
    ("1. spawn 1M stackful, bytes/process", "spawn", "bytes_per_proc", 1, 0, True,
     "RSS delta while all alive (ours: after all ran into their receive)"),
    ("1. spawn 1M stackful, minor page faults (cold round)", "spawn", "minflt", 1e-3, 0, True,
     "thousands; peers: not reported per round"),
    ("1. spawn 1M stackful, peak RSS MiB", "spawn", "time_maxrss_kb", 1 / 1024, 0, True, ""),
    ("1b. spawn 1M handler, total ms (cold)", "spawn_handler", "total_ms", 1, 0, True,
     "ours: amb_spawn_handler, no init; peers: their only kind of process"),
    ("1b. spawn 1M handler, total ms (warm)", "spawn_handler", "warm_total_ms", 1, 0, True, ""),
    ("1b. spawn 1M handler, bytes/process", "spawn_handler", "bytes_per_proc", 1, 0, True,
     "idle handler: no stack"),
    ("1b. spawn 1M handler, peak RSS MiB", "spawn_handler", "time_maxrss_kb", 1 / 1024, 0, True,
     ""),
    ("2. ring 10k x 100 (1M hops), ns/hop, 2 sched", "ring", "ns_per_hop", 1, 0, True, ""),
    ("2. ring, ns/hop, 1 sched", "ring.1", "ns_per_hop", 1, 0, True,
     "+S 1 / GOMAXPROCS=1 / 1 CAF thread / AMB_SCHEDULERS=1"),
    ("2b. ring with handler nodes, ns/hop, 2 sched", "ring.handler", "ns_per_hop", 1, 0, True,
     "ours: `ring N M 1`, nodes are handler processes; peers: their ring"),
    ("3. ping-pong 1M round trips, ns/rt, 2 sched", "pingpong", "ns_per_roundtrip", 1, 0, True,
     ""),
    ("3. ping-pong, ns/rt, 1 sched", "pingpong.1", "ns_per_roundtrip", 1, 0, True, ""),
    ("4. skynet 1M leaves, total ms", "skynet", "total_ms", 1, 0, True, "1,111,111 processes"),
    ("4. skynet, peak RSS MiB", "skynet", "time_maxrss_kb", 1 / 1024, 0, True, ""),
    ("5. gen_server call, 1 client, ns/call (1M calls)", "call.c1", "ns_per_call", 1, 0, True,
     "ours: amb_gen_server_call (monitor + alias + 5 s timeout); Erlang "
     "gen_server:call; Go req+reply chan; CAF request().then()"),
    ("5. gen_server call, 2 clients, k calls/s", "call.c2", "calls_per_sec", 1e-3, 0, False, ""),
    ("5. gen_server call, 3 clients, k calls/s", "call.c3", "calls_per_sec", 1e-3, 0, False, ""),
    ("5. gen_server call, 4 clients, k calls/s", "call.c4", "calls_per_sec", 1e-3, 0, False, ""),
    ("5c. gen_server call on a term-map state, ns/call", "call_state", "ns_per_call", 1, 0,
     True, "ours only: `call_state 100000 10000000`, a put into the state's 100k-key map "
          "per call, 10M calls, the state collected by the runtime; beside row 5"),
    ("5c. its peak RSS over the live map", "call_state", "peak_rss_per_live", 1, 2, True,
     "peak RSS of the puts above the RSS before the server started, over the map's size"),
    ("6. many-to-one 4x1M, M msgs/s", "m2o", "msgs_per_sec", 1e-6, 2, False,
     "Go: chan with 1,024 slots"),
    ("6. many-to-one variant, M msgs/s", "m2o.v", "msgs_per_sec", 1e-6, 2, False,
     "Erlang: off_heap mailbox; Go: unbuffered chan"),
    ("7. timers 1M (1..100 ms), arm ns/timer", "timers", "ns_per_arm", 1, 0, True,
     "amb_send_after / erlang:send_after / time.AfterFunc / delayed_send"),
    ("7. timers 1M, total ms (arm + all fired)", "timers", "total_ms", 1, 0, True,
     "ideal ≈ 100 ms"),
    ("7. timers 1M, peak RSS MiB", "timers", "time_maxrss_kb", 1 / 1024, 0, True, ""),
    ("8. maps: 1M puts into one map, ns/put", "maps", "put_ns", 1, 0, True,
     "ours only with an Erlang twin (bench/maps_bench.erl); ours: one amb_map_edit "
     "(changes in place the nodes it made); Erlang: maps:put loop"),
    ("8. maps: the same puts, each map kept (persistent), ns/put", "maps",
     {"c": "persistent_put_ns", "erl": "put_ns"}, 1, 0, True,
     "ours: amb_map_put, the heap collected by amb_heap_collect (a copy into the "
     "memory it emptied) at 8x the live map (in the time); Erlang: maps:put loop"),
    ("8. maps: then 1M gets, ns/get", "maps", "get_ns", 1, 0, True, "maps:get"),
    ("8. maps: then 1M removes, ns/remove", "maps", "remove_ns", 1, 0, True,
     "ours: one amb_map_edit; Erlang: maps:remove loop"),
    ("8. maps: the same removes, each map kept, ns/remove", "maps",
     {"c": "persistent_remove_ns", "erl": "remove_ns"}, 1, 0, True,
     "ours: amb_map_remove; Erlang: maps:remove loop"),
    ("8. maps: 1M pairs at once, ns/pair", "maps", {"c": "from_arrays_ns",
                                                     "erl": "from_list_ns"}, 1, 0, True,
     "amb_map / maps:from_list (the pairs made beforehand)"),
    ("8. maps, peak RSS MiB", "maps", "time_maxrss_kb", 1 / 1024, 0, True, ""),
]


def fmt(v, digits):
    return f"{v:,.{digits}f}"


def cell(res, label, key, scale, digits):
    v = res.values(label, key) if label else []
    if not v:
        return "–"
    v = [x * scale for x in v]
    med = statistics.median(v)
    if len(v) == 1:
        return fmt(med, digits)
    return f"{fmt(med, digits)} ({fmt(min(v), digits)}–{fmt(max(v), digits)})"


def advantage(ours, peer, lower_is_better):
    """How many times better ours is than peer (>1: ours better)."""
    if ours is None or peer is None or ours <= 0 or peer <= 0:
        return None
    return peer / ours if lower_is_better else ours / peer


def best_peer(res, labs, key, lower_is_better):
    """key: one name, or one per implementation."""
    best = None
    for p in PEERS:
        k = key.get(p) if isinstance(key, dict) else key
        v = res.median(labs.get(p), k) if labs.get(p) and k else None
        if v is None:
            continue
        if best is None or (v < best[1] if lower_is_better else v > best[1]):
            best = (p, v)
    return best


def gen_table(res):
    out = ["| benchmark | ambitious (C) | Erlang/OTP 25 | Go 1.19 | CAF 0.17 | "
           "ours vs best peer | notes |",
           "|---|---|---|---|---|---|---|"]
    for title, row, key, scale, digits, lower, note in ROWS:
        labs = labels(row)
        # key: one for every column, or per implementation (a row beside a
        # peer's result of another name).
        keys = key if isinstance(key, dict) else {c: key for c in ["c"] + PEERS}
        cells = [cell(res, labs.get(c), keys.get(c), scale, digits) if keys.get(c) else "–"
                 for c in ["c"] + PEERS]
        ours = res.median(labs.get("c"), keys["c"]) if labs.get("c") else None
        bp = best_peer(res, {p: labs[p] for p in PEERS if p in labs and keys.get(p)},
                       keys, lower)
        adv = advantage(ours, bp[1], lower) if bp else None
        ratio = "–" if adv is None else f"{adv:.2f}× {PEER_NAMES[bp[0]]}"
        out.append(f"| {title} | " + " | ".join(cells) + f" | {ratio} | {note} |")
    out.append("")
    out.append("Each cell: median (min–max) over the runs of the newest batch of that case. "
               "\"ours vs best peer\": how many times better ours is than the best peer "
               "(its median), so > 1 means ours is better, < 1 worse; for times and "
               "memory that is peer ÷ ours, for rates ours ÷ peer.")
    return "\n".join(out)


def check(res, desc, ours_label, ours_key, peer_label, peer_key, need, lower=True,
          scale=1.0, unit=""):
    """One target row: need is the required advantage factor; need 1 means
    strictly better than the peer. Values are shown times scale, in unit."""
    ours = res.median(ours_label, ours_key)
    peer = res.median(peer_label, peer_key)
    adv = advantage(ours, peer, lower)
    needed = "> 1×" if need == 1 else f"≥ {need:g}×"
    if adv is None:
        return (desc, "–", "–", "–", needed, "pending")
    met = adv > 1 if need == 1 else adv >= need
    u = f" {unit}" if unit else ""
    return (desc, f"{ours * scale:,.1f}{u}", f"{peer * scale:,.1f}{u} ({peer_label})",
            f"{adv:.2f}×", needed, "**met**" if met else "not met")


def absolute(res, desc, label, key, limit, unit, lower=True):
    v = res.median(label, key)
    if v is None:
        return (desc, "–", "–", "–", f"{'≤' if lower else '≥'} {limit:g} {unit}", "pending")
    met = v <= limit if lower else v >= limit
    return (desc, f"{v:,.1f} {unit}", "", "", f"{'≤' if lower else '≥'} {limit:g} {unit}",
            "**met**" if met else "not met")


def best_peer_check(res, desc, row, key, need, lower=True, unit=""):
    labs = labels(row)
    bp = best_peer(res, labs, key, lower)
    if bp is None or labs.get("c") is None:
        return (desc, "–", "–", "–", f"≥ {need:g}×", "pending")
    return check(res, desc, labs["c"], key, labs[bp[0]], key, need, lower, unit=unit)


def gen_targets(res):
    rows = [
        check(res, "ping-pong round trip ≤ 1/3 of Go's (2 sched)", "c.pingpong",
              "ns_per_roundtrip", "go.pingpong", "ns_per_roundtrip", 3, unit="ns"),
        check(res, "ping-pong round trip ≤ 1/3 of Go's (1 sched)", "c.pingpong.T1",
              "ns_per_roundtrip", "go.pingpong.P1", "ns_per_roundtrip", 3, unit="ns"),
        check(res, "ring hop ≤ 1/4 of Erlang's (2 sched)", "c.ring", "ns_per_hop", "erl.ring",
              "ns_per_hop", 4, unit="ns"),
        check(res, "ring hop ≤ 1/4 of Erlang's (1 sched)", "c.ring.T1", "ns_per_hop",
              "erl.ring.S1", "ns_per_hop", 4, unit="ns"),
        check(res, "(ring with handler nodes, 2 sched)", "c.ring.handler", "ns_per_hop",
              "erl.ring", "ns_per_hop", 4, unit="ns"),
        check(res, "skynet 1M ≤ 1/2 of Go's time", "c.skynet", "total_ms", "go.skynet",
              "total_ms", 2, unit="ms"),
        check(res, "skynet peak RSS below Go's", "c.skynet", "time_maxrss_kb", "go.skynet",
              "time_maxrss_kb", 1, scale=1 / 1024, unit="MiB"),
        check(res, "many-to-one ≥ 1.2× Go's buffered chan", "c.m2o", "msgs_per_sec", "go.m2o",
              "msgs_per_sec", 1.2, lower=False, scale=1e-6, unit="M/s"),
        check(res, "many-to-one ≥ 3× Erlang", "c.m2o", "msgs_per_sec", "erl.m2o",
              "msgs_per_sec", 3, lower=False, scale=1e-6, unit="M/s"),
        check(res, "gen_server call (1 client) ≤ 1/5 of Erlang's gen_server:call", "c.call.c1",
              "ns_per_call", "erl.gen_server.c1", "ns_per_call", 5, unit="ns"),
        check(res, "gen_server call (1 client) ≤ Go's request/reply channel", "c.call.c1",
              "ns_per_call", "go.call.c1", "ns_per_call", 1, unit="ns"),
        check(res, "gen_server call: throughput grows from 2 to 4 clients", "c.call.c4",
              "calls_per_sec", "c.call.c2", "calls_per_sec", 1, lower=False, scale=1e-3,
              unit="k/s"),
        check(res, "spawn 1M handlers: total (cold) ≤ 1/4 of Go's", "c.spawn_handler",
              "total_ms", "go.spawn", "total_ms", 4, unit="ms"),
        absolute(res, "spawn 1M handlers: bytes per idle process", "c.spawn_handler",
                 "bytes_per_proc", 512, "B"),
        check(res, "spawn 1M stackful: faster than Go (cold total)", "c.spawn", "total_ms",
              "go.spawn", "total_ms", 1, unit="ms"),
        check(res, "spawn 1M stackful: faster than Go (warm total)", "c.spawn",
              "warm_total_ms", "go.spawn", "warm_total_ms", 1, unit="ms"),
        absolute(res, "spawn 1M stackful: bytes per process (one 4 KiB page + a small header)",
                 "c.spawn", "bytes_per_proc", 4096 + 512, "B"),
        best_peer_check(res, "timers: arm ≤ 1/10 of the best peer", "timers", "ns_per_arm", 10,
                        unit="ns"),
        absolute(res, "timers: 1M of 1..100 ms all delivered within 1.5 × 100 ms",
                 "c.timers", "total_ms", 150, "ms"),
        check(res, "maps 1M: persistent put ≤ 1/2 of Erlang's maps:put", "c.maps",
              "persistent_put_ns", "erl.maps", "put_ns", 2, unit="ns"),
        check(res, "maps 1M: get ≤ 1/2 of Erlang's maps:get", "c.maps", "get_ns",
              "erl.maps", "get_ns", 2, unit="ns"),
        check(res, "maps 1M: persistent remove ≤ 1/2 of Erlang's maps:remove", "c.maps",
              "persistent_remove_ns", "erl.maps", "remove_ns", 2, unit="ns"),
        check(res, "(maps 1M: puts inside one amb_map_edit)", "c.maps", "put_ns",
              "erl.maps", "put_ns", 2, unit="ns"),
        check(res, "(maps 1M: removes inside one amb_map_edit)", "c.maps", "remove_ns",
              "erl.maps", "remove_ns", 2, unit="ns"),
        absolute(res, "term-map state of 100k keys, 10M puts: peak RSS ≤ 3× the live map",
                 "c.call_state", "peak_rss_per_live", 3, "×"),
    ]
    out = ["| target | ours | peer (median) | ours vs peer | needed | verdict |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    # The stackful spawn's page-fault share, from the machine's fault cost.
    flt = res.median("c.spawn", "minflt")
    tot = res.median("c.spawn", "total_ms")
    pf = res.median("sys.pagefault", "ns_per_page_1")
    if flt is not None and tot and pf:
        share = flt * pf / 1e6 / tot
        out.append("")
        out.append(f"Stackful spawn, cold round: {flt:,.0f} minor page faults × "
                   f"{pf:,.0f} ns (sys.pagefault, same machine) ≈ {flt * pf / 1e6:,.0f} ms, "
                   f"i.e. {share:.0%} of the {tot:,.0f} ms total.")
    fltw = res.median("c.spawn", "warm_minflt")
    if fltw is not None:
        out.append(f"Warm rounds (best of 2-3): {fltw:,.0f} minor faults (0 would mean the "
                   f"runtime kept the memory of the round before).")
    hflt = res.median("c.spawn_handler", "minflt")
    htot = res.median("c.spawn_handler", "total_ms")
    if hflt is not None and htot and pf:
        out.append(f"Handler spawn, cold round: {hflt:,.0f} faults ≈ {hflt * pf / 1e6:,.0f} ms "
                   f"of the {htot:,.0f} ms total ({hflt * pf / 1e6 / htot:.0%}).")
    return "\n".join(out)


def gen_runinfo(res, versions):
    out = []
    batches = {}
    for b in res.blocks:
        lab = b.get("label", "")
        if b.get("batch") == res.newest.get(lab):
            impl = lab.split(".")[0]
            batches.setdefault(impl, set()).add(b.get("batch"))
    for impl in sorted(batches):
        out.append(f"- `{impl}.*` cases: batch {', '.join(sorted(batches[impl]))}")
    loads = [num(b.get("load")) for b in res.blocks if b.get("batch") == res.newest.get(
        b.get("label", ""))]
    loads = [x for x in loads if x is not None]
    if loads:
        out.append(f"- 1-minute load average when a case started: median {statistics.median(loads):.2f}, "
                   f"max {max(loads):.2f} (2 vCPUs; other work shares the machine)")
    pf = res.values("sys.pagefault", "ns_per_page_1")
    if pf:
        out.append(f"- first touch of a fresh 4 KiB page (sys.pagefault): median "
                   f"{statistics.median(pf):,.0f} ns")
    if versions and os.path.exists(versions):
        want = ("kernel", "Model name", "CPU(s)", "otp_version", "go version", "libcaf-dev", "gcc")
        for line in open(versions):
            line = line.strip()
            if line.startswith(want):
                out.append(f"- {' '.join(line.split())}")
    return "\n".join(out)


SKELETON = """# Performance

<!-- BEGIN generated: runinfo -->
<!-- END generated: runinfo -->

<!-- BEGIN generated: table -->
<!-- END generated: table -->

<!-- BEGIN generated: targets -->
<!-- END generated: targets -->
"""


def replace(doc, name, body):
    pat = re.compile(r"(<!-- BEGIN generated: %s -->\n).*?(<!-- END generated: %s -->)"
                     % (name, name), re.S)
    if not pat.search(doc):
        sys.exit(f"perf_table.py: no region '{name}' in the document")
    return pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), doc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--versions")
    ap.add_argument("--out")
    a = ap.parse_args()
    res = Results(parse(a.logs))
    parts = {"runinfo": gen_runinfo(res, a.versions), "table": gen_table(res),
             "targets": gen_targets(res)}
    if not a.out:
        for name in ("runinfo", "table", "targets"):
            print(parts[name] + "\n")
        return
    doc = open(a.out).read() if os.path.exists(a.out) else SKELETON
    for name, body in parts.items():
        doc = replace(doc, name, body)
    with open(a.out, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    main()
