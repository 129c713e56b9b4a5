#!/usr/bin/env python3
"""Prints the bench-echo table from run_echo.py's JSONL: per size, the
median server CPU us per request and req/s of each server, and anyloop's
ratios vs raw mio and vs tokio current-thread, with the bars:
CPU/request <= 1.10x mio at 1 and 10 KiB, <= 1.0x at 100 KiB;
req/s >= 0.9x tokio.

With --style streams (bench-streams): anyloop-streams' CPU per request vs
tokio current-thread (bar <= 1.15x at every size) and vs anyloop's
protocol-style server."""
import json
import statistics
import sys


def streams_ratios(sizes, med):
    print("\nanyloop-streams ratios (server CPU per request; lower is better)")
    print("| size | vs tokio-ct (bar <= 1.15) | vs anyloop protocol | req/s vs tokio-ct |")
    print("|---|---|---|---|")
    ok = True
    for z in sizes:
        s_cpu, s_rps = med("anyloop-streams", z, "server_us_per_req"), med("anyloop-streams", z, "rps")
        p_cpu = med("anyloop", z, "server_us_per_req")
        t_cpu, t_rps = med("tokio-ct", z, "server_us_per_req"), med("tokio-ct", z, "rps")
        r = s_cpu / t_cpu
        ok &= r <= 1.15
        print(f"| {z // 1024} KiB | {r:.2f}x ({'ok' if r <= 1.15 else 'MISSED'}) | {s_cpu / p_cpu:.2f}x "
              f"| {s_rps / t_rps:.2f}x |")
    print("\nall bars met" if ok else "\nsome bars missed (see above)")


def main(paths, max_other=None, per_run=False, style="protocol"):
    recs = [dict(json.loads(line), file=p) for p in paths for line in open(p) if line.strip()]
    if per_run:
        # Every run in which other tenants stayed under max_other % of a core,
        # whatever the other servers of its block saw (more samples, less pairing).
        recs = [r for r in recs if r.get("other_cpu_pct", 1e9) < max_other]
        print(f"\n=== quiet runs only (other tenants < {max_other:.0f}% of a core during the run)")
    elif max_other is not None:
        # Keep only (rep, size) blocks in which every server ran while other
        # tenants used < max_other % of a core (run_echo.py --max-other-cpu).
        noisy = {(r["file"], r["rep"], r["size"]) for r in recs if r.get("other_cpu_pct", 1e9) >= max_other}
        recs = [r for r in recs if (r["file"], r["rep"], r["size"]) not in noisy]
        print(f"\n=== quiet blocks only (other tenants < {max_other:.0f}% of a core during every run of the block)")
        if not recs:
            print("no quiet block in this run")
            return
    else:
        print("\n=== every run")
    by = {}
    for r in recs:
        by.setdefault((r["server"], r["size"]), []).append(r)
    servers = sorted({s for s, _ in by}, key=lambda s: (not s.startswith("anyloop"), s))
    sizes = sorted({z for _, z in by})

    def med(s, z, k):
        v = [r[k] for r in by.get((s, z), [])]
        return statistics.median(v) if v else float("nan")

    print("\nserver CPU us per request (median; user+sys from /proc) | req/s (median) | n")
    print("| server | " + " | ".join(f"{z // 1024} KiB us/req | {z // 1024} KiB req/s" for z in sizes) + " |")
    print("|---" * (1 + 2 * len(sizes)) + "|")
    for s in servers:
        cells = []
        for z in sizes:
            cells += [f"{med(s, z, 'server_us_per_req'):.2f}", f"{med(s, z, 'rps'):.0f} (n={len(by.get((s, z), []))})"]
        print(f"| {s} | " + " | ".join(cells) + " |")
    if style == "streams":
        if "anyloop-streams" in servers:
            streams_ratios(sizes, med)
        return
    if "anyloop" not in servers:
        return
    print("\nanyloop ratios (CPU per request: lower is better; req/s: higher is better)")
    print("| size | CPU/req vs mio (bar) | CPU/req vs tokio | req/s vs mio | req/s vs tokio (bar >= 0.90) |")
    print("|---|---|---|---|---|")
    ok = True
    for z in sizes:
        a_cpu, a_rps = med("anyloop", z, "server_us_per_req"), med("anyloop", z, "rps")
        m_cpu, m_rps = med("mio", z, "server_us_per_req"), med("mio", z, "rps")
        t_cpu, t_rps = med("tokio-ct", z, "server_us_per_req"), med("tokio-ct", z, "rps")
        bar = 1.0 if z >= 100 * 1024 else 1.10
        c_mio, r_tok = a_cpu / m_cpu, a_rps / t_rps
        c_ok, r_ok = c_mio <= bar, r_tok >= 0.9
        ok &= c_ok and r_ok
        print(f"| {z // 1024} KiB | {c_mio:.2f}x (<= {bar:.2f}: {'ok' if c_ok else 'MISSED'}) | {a_cpu / t_cpu:.2f}x "
              f"| {a_rps / m_rps:.2f}x | {r_tok:.2f}x ({'ok' if r_ok else 'MISSED'}) |")
    print("\nall bars met" if ok else "\nsome bars missed (see above)")


if __name__ == "__main__":
    args = sys.argv[1:]
    style = "protocol"
    if len(args) >= 2 and args[0] == "--style":
        style, args = args[1], args[2:]
    main(args, style=style)
    main(args, max_other=15.0, style=style)
    main(args, max_other=15.0, per_run=True, style=style)
