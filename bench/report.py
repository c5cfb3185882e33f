#!/usr/bin/env python3
"""Turns loadgen's JSON lines into the Markdown table and the SVG chart.

    python3 bench/report.py bench/results/latest.jsonl bench/results/latest \
        --machine "..." --rustc "..." --commit abc123 --started ... --load ... --pinning ...

Writes PREFIX.md and PREFIX.svg. Standard library only.
"""

import argparse
import json
import math

NAMES = {"tandem": "tandem", "tungstenite": "tokio-tungstenite", "fastwebsockets": "fastwebsockets"}
PEERS = ["tungstenite", "fastwebsockets"]
COLORS = {"tandem": "#2b6cb0", "tungstenite": "#dd6b20", "fastwebsockets": "#38a169"}


def load(path):
    runs = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r.get("mode") == "echo" and r.get("tls"):
                key = ("echo-tls", r.get("connections"), r.get("size"), r.get("window"))
            elif r.get("mode") == "idle" and r.get("tls"):
                key = ("idle-tls",)
            elif r.get("mode") == "echo" and r.get("deflate"):
                key = ("echo-deflate", r.get("connections"), r.get("size"), r.get("window"))
            elif r.get("mode") == "idle" and r.get("deflate"):
                key = ("idle-deflate",)
            elif r.get("mode") == "echo":
                key = ("echo", r.get("connections"), r.get("size"), r.get("window"))
            elif r.get("mode") == "broadcast":
                key = ("broadcast", r.get("connections"))
            else:
                key = (r.get("mode"),)
            runs.setdefault(key, {}).setdefault(r["label"], []).append(r)
    return runs


def median_run(rs, field):
    good = [r for r in rs if r.get("errors", 1) == 0]
    if not good:
        return None
    good.sort(key=lambda r: r[field])
    return good[len(good) // 2]


def cpu_per_message(r):
    """Server CPU time per echoed message, in µs; None when not measured."""
    if r is None or r.get("server_cpu_pct") is None or not r["msgs_per_sec"]:
        return None
    return r["server_cpu_pct"] / 100 * 1e6 / r["msgs_per_sec"]


def size_name(n):
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def fmt_rate(x):
    if x is None:
        return "failed"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}×"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("prefix")
    for opt in ["machine", "rustc", "commit", "started", "load", "pinning", "readme"]:
        ap.add_argument("--" + opt, default="")
    a = ap.parse_args()
    runs = load(a.jsonl)

    md = []
    md.append("| | |")
    md.append("|---|---|")
    md.append(f"| machine | {a.machine} |")
    md.append(f"| toolchain | {a.rustc} |")
    md.append(f"| commit | {a.commit}, run {a.started} |")
    md.append(f"| set-up | {a.pinning} |")
    md.append(f"| load | {a.load} |")
    md.append("")

    # ----- echo
    md.append("**Echo** (messages/s; round trip p50 / p99 / p99.9 in µs; ratio = tandem ÷ peer, higher is better for tandem)")
    md.append("")
    md.append("| scenario | tandem | tokio-tungstenite | fastwebsockets | vs tokio-tungstenite | vs fastwebsockets |")
    md.append("|---|---|---|---|---|---|")
    echo_keys = sorted([k for k in runs if k[0] == "echo"], key=lambda k: (k[2], k[1], k[3]))
    echo_rows = []
    for key in echo_keys:
        _, conns, size, window = key
        cells = {}
        rates = {}
        for impl in NAMES:
            r = median_run(runs[key].get(impl, []), "msgs_per_sec")
            if r is None:
                cells[impl] = "—" if impl not in runs[key] else "failed"
                rates[impl] = None
                continue
            rates[impl] = r["msgs_per_sec"]
            cells[impl] = (f"{fmt_rate(r['msgs_per_sec'])} "
                           f"({r['p50_us']:.0f} / {r['p99_us']:.0f} / {r['p999_us']:.0f})")
        name = f"{conns} × {size_name(size)}, window {window}"
        rt = ratio(rates["tandem"], rates["tungstenite"])
        rf = ratio(rates["tandem"], rates["fastwebsockets"])
        md.append(f"| {name} | {cells['tandem']} | {cells['tungstenite']} | {cells['fastwebsockets']} "
                  f"| {fmt_ratio(rt)} | {fmt_ratio(rf)} |")
        echo_rows.append((f"{conns}×{size_name(size)} w{window}", rates, key))
    md.append("")

    # Server CPU per message, which shows efficiency even when the load
    # generator is the limit.
    md.append("Server CPU per message (µs of CPU time per echoed message; lower is better):")
    md.append("")
    md.append("| scenario | tandem | tokio-tungstenite | fastwebsockets |")
    md.append("|---|---|---|---|")
    for label, rates, key in echo_rows:
        row = []
        for impl in NAMES:
            r = median_run(runs[key].get(impl, []), "msgs_per_sec")
            if r is None or r.get("server_cpu_pct") is None or not r["msgs_per_sec"]:
                row.append("—")
            else:
                row.append(f"{r['server_cpu_pct'] / 100 * 1e6 / r['msgs_per_sec']:.2f}")
        md.append(f"| {label} | " + " | ".join(row) + " |")
    md.append("")

    # ----- idle
    idle = {}
    if ("idle",) in runs:
        md.append("**Idle memory** (server RSS delta ÷ open connections; lower is better)")
        md.append("")
        md.append("| connections | tandem | tokio-tungstenite | fastwebsockets | tokio-tungstenite ÷ tandem | fastwebsockets ÷ tandem |")
        md.append("|---|---|---|---|---|---|")
        conns = None
        for impl in NAMES:
            r = median_run(runs[("idle",)].get(impl, []), "bytes_per_conn")
            idle[impl] = None if r is None else r["bytes_per_conn"]
            conns = conns or (r and r["connections"])
        cell = lambda v: "failed" if v is None else f"{v:,.0f} B"
        md.append(f"| {conns:,} | {cell(idle['tandem'])} | {cell(idle['tungstenite'])} | {cell(idle['fastwebsockets'])} "
                  f"| {fmt_ratio(ratio(idle['tungstenite'], idle['tandem']))} "
                  f"| {fmt_ratio(ratio(idle['fastwebsockets'], idle['tandem']))} |")
        md.append("")

    # ----- broadcast
    bcast = {}
    bkeys = sorted([k for k in runs if k[0] == "broadcast"], key=lambda k: k[1])
    if bkeys:
        md.append("**Broadcast** (one 64-byte text to every session; deliveries/s and the median time until the last client has it)")
        md.append("")
        md.append("| sessions | tandem | tokio-tungstenite (task + channel per connection) | vs tokio-tungstenite |")
        md.append("|---|---|---|---|")
        for key in bkeys:
            cells = {}
            for impl in ["tandem", "tungstenite"]:
                r = median_run(runs[key].get(impl, []), "deliveries_per_sec")
                bcast[(key[1], impl)] = None if r is None else r["deliveries_per_sec"]
                cells[impl] = "failed" if r is None else (
                    f"{fmt_rate(r['deliveries_per_sec'])}/s, last after {r['last_client_us'] / 1000:.2f} ms")
            md.append(f"| {key[1]:,} | {cells['tandem']} | {cells['tungstenite']} "
                      f"| {fmt_ratio(ratio(bcast[(key[1], 'tandem')], bcast[(key[1], 'tungstenite')]))} |")
        md.append("")

    dkeys = sorted([k for k in runs if k[0] == "echo-deflate"], key=lambda k: (k[2], k[1], k[3]))
    if dkeys or ("idle-deflate",) in runs:
        md.append("**permessage-deflate** (tandem only: neither tokio-tungstenite 0.30 nor fastwebsockets 0.10 "
                  "implements it), at the documented defaults, offered as browsers do; every echo inflated "
                  "and compared with the text sent. Ratio = with compression ÷ without, same run.")
        md.append("")
        md.append("| scenario | tandem, compression on | server CPU per message | vs compression off |")
        md.append("|---|---|---|---|")
        for key in dkeys:
            _, conns, size, window = key
            r = median_run(runs[key].get("tandem", []), "msgs_per_sec")
            plain = median_run(runs.get(("echo", conns, size, window), {}).get("tandem", []), "msgs_per_sec")
            name = f"echo {conns} × {size_name(size)}, window {window}"
            if r is None:
                md.append(f"| {name} | failed | | |")
                continue
            cpu = ("—" if r.get("server_cpu_pct") is None or not r["msgs_per_sec"]
                   else f"{r['server_cpu_pct'] / 100 * 1e6 / r['msgs_per_sec']:.2f} µs")
            md.append(f"| {name} | {fmt_rate(r['msgs_per_sec'])} msg/s ({r['p50_us']:.0f} / {r['p99_us']:.0f} / "
                      f"{r['p999_us']:.0f} µs) | {cpu} | {fmt_ratio(ratio(r['msgs_per_sec'], plain and plain['msgs_per_sec']))} |")
        r = median_run(runs.get(("idle-deflate",), {}).get("tandem", []), "bytes_per_conn")
        if r is not None:
            md.append(f"| idle {r['connections']:,} connections | {r['bytes_per_conn']:,.0f} B per connection | | "
                      f"{fmt_ratio(ratio(r['bytes_per_conn'], idle.get('tandem')))} |")
        md.append("")
    else:
        md.append("**permessage-deflate**: not measured in this run.")
        md.append("")

    # ----- wss://
    wss_cpu = {}
    wss_idle = {}
    tkeys = sorted([k for k in runs if k[0] == "echo-tls"], key=lambda k: (k[2], k[1], k[3]))
    if tkeys or ("idle-tls",) in runs:
        md.append("**wss://** (TLS 1.3, rustls on both sides: the ring provider at rustls's defaults, one "
                  "`ServerConfig` for both servers, a self-signed certificate; the load generator runs rustls's "
                  "sans-I/O client). Server CPU per message in µs and idle memory per connection, lower is better; "
                  "ratio = tokio-tungstenite ÷ tandem, above 1 when tandem needs less.")
        md.append("")
        md.append("| scenario | tandem | tokio-tungstenite | tokio-tungstenite ÷ tandem |")
        md.append("|---|---|---|---|")
        for key in tkeys:
            _, conns, size, window = key
            cells = {}
            for impl in ["tandem", "tungstenite"]:
                r = median_run(runs[key].get(impl, []), "msgs_per_sec")
                wss_cpu[(key, impl)] = cpu_per_message(r)
                cells[impl] = "failed" if r is None else (
                    f"{wss_cpu[(key, impl)]:.2f} µs per message ({fmt_rate(r['msgs_per_sec'])} msg/s; "
                    f"{r['p50_us']:.0f} / {r['p99_us']:.0f} / {r['p999_us']:.0f} µs)")
            md.append(f"| echo {conns} × {size_name(size)}, window {window} | {cells['tandem']} | {cells['tungstenite']} "
                      f"| {fmt_ratio(ratio(wss_cpu[(key, 'tungstenite')], wss_cpu[(key, 'tandem')]))} |")
        if ("idle-tls",) in runs:
            conns = None
            for impl in ["tandem", "tungstenite"]:
                r = median_run(runs[("idle-tls",)].get(impl, []), "bytes_per_conn")
                wss_idle[impl] = None if r is None else r["bytes_per_conn"]
                conns = conns or (r and r["connections"])
            cell = lambda v: "failed" if v is None else f"{v:,.0f} B per connection"
            md.append(f"| idle {conns or 0:,} connections | {cell(wss_idle['tandem'])} | {cell(wss_idle['tungstenite'])} "
                      f"| {fmt_ratio(ratio(wss_idle['tungstenite'], wss_idle['tandem']))} |")
        md.append("")

    # ----- targets
    def echo_rate(conns, size, window, impl):
        key = ("echo", conns, size, window)
        r = median_run(runs.get(key, {}).get(impl, []), "msgs_per_sec")
        return None if r is None else r["msgs_per_sec"]

    targets = []
    r1 = ratio(echo_rate(100, 20, 1, "tandem"), echo_rate(100, 20, 1, "tungstenite"))
    targets.append(("echo 100 × 20 B, window 1: ≥ 1.5× tokio-tungstenite", fmt_ratio(r1), r1 is not None and r1 >= 1.5))
    r16 = ratio(echo_rate(100, 20, 16, "tandem"), echo_rate(100, 20, 16, "tungstenite"))
    targets.append(("echo 100 × 20 B, window 16: ≥ 3× tokio-tungstenite", fmt_ratio(r16), r16 is not None and r16 >= 3))
    worst = None
    for label, rates, _ in echo_rows:
        x = ratio(rates["tandem"], rates["fastwebsockets"])
        if x is not None and (worst is None or x < worst[0]):
            worst = (x, label)
    targets.append(("every echo scenario: at least level with fastwebsockets (≥ 1.00×; within ±3 % counts as level)",
                    "lowest " + (f"{worst[0]:.2f}× ({worst[1]})" if worst else "–"),
                    worst is not None and worst[0] >= 0.97))
    t = idle.get("tandem")
    targets.append(("idle memory ≤ 2 KiB per connection", "–" if t is None else f"{t:,.0f} B", t is not None and t <= 2048))
    below = t is not None and all(idle.get(p) is not None and t < idle[p] for p in PEERS)
    targets.append(("idle memory below both peers", "–" if t is None else
                    ", ".join(f"{NAMES[p]} {idle.get(p) or 0:,.0f} B" for p in PEERS), below))
    rb = ratio(bcast.get((10000, "tandem")), bcast.get((10000, "tungstenite")))
    targets.append(("broadcast 10,000 sessions: ≥ 3× tokio-tungstenite fan-out", fmt_ratio(rb), rb is not None and rb >= 3))
    if tkeys or wss_idle:
        cpus = [(wss_cpu.get((k, "tandem")), wss_cpu.get((k, "tungstenite"))) for k in tkeys]
        ahead_cpu = bool(cpus) and all(t is not None and p is not None and t < p for t, p in cpus)
        wt, wp = wss_idle.get("tandem"), wss_idle.get("tungstenite")
        ahead_idle = wt is not None and wp is not None and wt < wp
        worst_cpu = min((ratio(p, t) for t, p in cpus if ratio(p, t) is not None), default=None)
        measured = (f"CPU per message: lowest tokio-tungstenite ÷ tandem {fmt_ratio(worst_cpu)}; "
                    f"idle: {'–' if wt is None else f'{wt:,.0f} B'} against {'–' if wp is None else f'{wp:,.0f} B'}")
        targets.append(("wss: tandem ahead on CPU per message and idle memory per TLS connection", measured,
                        ahead_cpu and ahead_idle))
    md.append("**Targets**")
    md.append("")
    md.append("| target | measured | |")
    md.append("|---|---|---|")
    for name, measured, ok in targets:
        md.append(f"| {name} | {measured} | {'met' if ok else '**missed**'} |")
    md.append("")

    with open(a.prefix + ".md", "w") as f:
        f.write("\n".join(md))
    if a.readme:
        # The README shows the latest table between two markers.
        with open(a.readme) as f:
            text = f.read()
        start, end = "<!-- bench:start -->", "<!-- bench:end -->"
        i, j = text.find(start), text.find(end)
        if 0 <= i < j:
            text = text[:i + len(start)] + "\n" + "\n".join(md).rstrip() + "\n" + text[j:]
            with open(a.readme, "w") as f:
                f.write(text)
    with open(a.prefix + ".svg", "w") as f:
        f.write(svg(echo_rows, idle, bcast, a))


def svg(echo_rows, idle, bcast, a):
    """Two panels: echo throughput relative to tokio-tungstenite (and the
    broadcast ratio), and idle memory per connection."""
    groups = []
    for label, rates, _ in echo_rows:
        base = rates.get("tungstenite")
        groups.append((label, {i: ratio(rates.get(i), base) for i in NAMES}))
    for n in sorted({k[0] for k in bcast}):
        base = bcast.get((n, "tungstenite"))
        groups.append((f"bcast {n:,}", {i: ratio(bcast.get((n, i)), base) for i in ["tandem", "tungstenite"]}))
    W, H = 980, 420
    left, top, plot_w, plot_h = 60, 60, 640, 280
    vmax = max([v for _, g in groups for v in g.values() if v is not None] + [1.0])
    step = 0.5 if vmax * 1.1 <= 4 else (1.0 if vmax * 1.1 <= 8 else 2.0)
    vmax = math.ceil(vmax * 1.1 / step) * step
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15" font-weight="bold">tandem vs tokio-tungstenite and fastwebsockets</text>',
           f'<text x="{left}" y="40" fill="#555">{esc(a.machine)} — {esc(a.started)} — {esc(a.load)}</text>',
           f'<text x="{left}" y="{top - 6}" fill="#333">throughput ÷ tokio-tungstenite (higher is better)</text>']
    # axis and grid
    steps = round(vmax / step)
    for s in range(steps + 1):
        v = step * s
        y = top + plot_h - plot_h * v / vmax
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{v:.1f}×</text>')
    y1 = top + plot_h - plot_h * 1.0 / vmax
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y1:.1f}" y2="{y1:.1f}" stroke="#999" stroke-dasharray="4 3"/>')
    gw = plot_w / max(1, len(groups))
    bw = gw * 0.8 / 3
    for gi, (label, vals) in enumerate(groups):
        x0 = left + gi * gw + gw * 0.1
        for bi, impl in enumerate(NAMES):
            v = vals.get(impl)
            if v is None:
                continue
            h = plot_h * v / vmax
            x = x0 + bi * bw
            y = top + plot_h - h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" fill="{COLORS[impl]}"/>')
            if impl == "tandem":
                out.append(f'<text x="{x + bw / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="9">{v:.1f}</text>')
        out.append(f'<text x="{x0 + gw * 0.4:.1f}" y="{top + plot_h + 14}" text-anchor="middle" font-size="9">{esc(label)}</text>')
    # idle panel
    px, pw = 760, 180
    vals = [(i, idle.get(i)) for i in NAMES if idle.get(i) is not None]
    out.append(f'<text x="{px}" y="{top - 6}" fill="#333">idle KiB per connection (lower is better)</text>')
    if vals:
        m = max(v for _, v in vals) * 1.2
        bw2 = pw / 3 * 0.7
        for i, (impl, v) in enumerate(vals):
            h = plot_h * v / m
            x = px + i * pw / 3
            y = top + plot_h - h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw2:.1f}" height="{h:.1f}" fill="{COLORS[impl]}"/>')
            out.append(f'<text x="{x + bw2 / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="10">{v / 1024:.1f}</text>')
        out.append(f'<line x1="{px}" x2="{px + pw}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#999"/>')
    # legend
    ly = H - 30
    for i, impl in enumerate(NAMES):
        x = left + i * 170
        out.append(f'<rect x="{x}" y="{ly - 10}" width="12" height="12" fill="{COLORS[impl]}"/>')
        out.append(f'<text x="{x + 18}" y="{ly}">{NAMES[impl]}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    main()
