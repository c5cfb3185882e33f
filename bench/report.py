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
            # The runtime flavour the server ran on (scripts/bench.sh tags it).
            rt = r.get("runtime", "current")
            if r.get("mode") == "echo" and r.get("tls"):
                key = ("echo-tls", r.get("connections"), r.get("size"), r.get("window"))
            elif r.get("mode") == "idle" and r.get("tls"):
                key = ("idle-tls",)
            elif r.get("mode") == "echo" and r.get("deflate"):
                key = ("echo-deflate", r.get("connections"), r.get("size"), r.get("window"))
            elif r.get("mode") == "idle" and r.get("deflate"):
                key = ("idle-deflate",)
            elif r.get("mode") == "echo":
                key = ("echo", r.get("connections"), r.get("size"), r.get("window"), rt)
            elif r.get("mode") == "broadcast":
                key = ("broadcast", r.get("connections"), r.get("window", 1), rt)
            elif r.get("mode") == "instructions":
                key = ("instructions", r.get("connections"), r.get("size"), r.get("window"))
            elif r.get("mode") == "idle":
                key = ("idle", rt)
            else:
                key = (r.get("mode"),)
            runs.setdefault(key, {}).setdefault(r["label"], []).append(r)
    return runs


RUNTIMES = ["current", "multi"]
RUNTIME_NAMES = {"current": "current-thread", "multi": "multi-thread"}


def cpu_per_message(r):
    """Server CPU time per echoed message, in µs; None when not measured."""
    if r is None or r.get("errors", 1) != 0 or r.get("server_cpu_pct") is None or not r.get("msgs_per_sec"):
        return None
    return r["server_cpu_pct"] / 100 * 1e6 / r["msgs_per_sec"]


def median_value(rs, value):
    """The median over the rounds of value(run), for the runs without errors."""
    vs = sorted(v for v in (value(r) for r in rs if r.get("errors", 1) == 0) if v is not None)
    return vs[len(vs) // 2] if vs else None


def median_run(rs, field):
    good = [r for r in rs if r.get("errors", 1) == 0]
    if not good:
        return None
    good.sort(key=lambda r: r[field])
    return good[len(good) // 2]


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
    md.append("| scenario | runtime | tandem | tokio-tungstenite | fastwebsockets | vs tokio-tungstenite | vs fastwebsockets |")
    md.append("|---|---|---|---|---|---|---|")
    echo_keys = sorted([k for k in runs if k[0] == "echo"],
                       key=lambda k: (k[2], k[1], k[3], RUNTIMES.index(k[4]) if k[4] in RUNTIMES else 9))
    echo_rows = []
    for key in echo_keys:
        _, conns, size, window, rt = key
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
        rt_name = RUNTIME_NAMES.get(rt, rt)
        rt_ = ratio(rates["tandem"], rates["tungstenite"])
        rf = ratio(rates["tandem"], rates["fastwebsockets"])
        md.append(f"| {name} | {rt_name} | {cells['tandem']} | {cells['tungstenite']} | {cells['fastwebsockets']} "
                  f"| {fmt_ratio(rt_)} | {fmt_ratio(rf)} |")
        echo_rows.append((f"{conns}×{size_name(size)} w{window}", rates, key))
    md.append("")

    # Server CPU per message, which shows efficiency even when the load
    # generator is the limit; the echo targets are read here.
    cpu = {}
    md.append("Server CPU per message (µs of CPU time per echoed message, median of the rounds; lower is better;"
              " ratio = peer ÷ tandem, higher is better for tandem):")
    md.append("")
    md.append("| scenario | runtime | tandem | tokio-tungstenite | fastwebsockets | tokio-tungstenite ÷ tandem | fastwebsockets ÷ tandem |")
    md.append("|---|---|---|---|---|---|---|")
    for label, rates, key in echo_rows:
        for impl in NAMES:
            cpu[(key, impl)] = median_value(runs[key].get(impl, []), cpu_per_message)
        cell = lambda v: "—" if v is None else f"{v:.2f}"
        t = cpu[(key, "tandem")]
        md.append(f"| {label} | {RUNTIME_NAMES.get(key[4], key[4])} | "
                  + " | ".join(cell(cpu[(key, i)]) for i in NAMES)
                  + f" | {fmt_ratio(ratio(cpu[(key, 'tungstenite')], t))} | {fmt_ratio(ratio(cpu[(key, 'fastwebsockets')], t))} |")
    md.append("")

    # ----- instructions
    ikeys = sorted([k for k in runs if k[0] == "instructions"], key=lambda k: (k[2], k[1], k[3]))
    instr = {}
    if ikeys:
        md.append("User-space instructions per echoed message (valgrind's cachegrind, current-thread runtime, one"
                  " count per server: the difference between a 2-s and a 5-s run; it does not move with the"
                  " machine's load):")
        md.append("")
        md.append("| scenario | tandem | tokio-tungstenite | fastwebsockets |")
        md.append("|---|---|---|---|")
        for key in ikeys:
            _, conns, size, window = key
            for impl in NAMES:
                rs = runs[key].get(impl, [])
                instr[(key, impl)] = rs[-1]["instructions_per_message"] if rs else None
            cell = lambda v: "—" if v is None else f"{v:,.0f}"
            md.append(f"| {conns}×{size_name(size)} w{window} | " + " | ".join(cell(instr[(key, i)]) for i in NAMES) + " |")
        md.append("")

    # ----- idle
    idle = {}
    ikeys = sorted([k for k in runs if k[0] == "idle"], key=lambda k: RUNTIMES.index(k[1]) if k[1] in RUNTIMES else 9)
    if ikeys:
        md.append("**Idle memory** (server RSS delta ÷ open connections; lower is better)")
        md.append("")
        md.append("| connections | runtime | tandem | tokio-tungstenite | fastwebsockets | tokio-tungstenite ÷ tandem | fastwebsockets ÷ tandem |")
        md.append("|---|---|---|---|---|---|---|")
        for key in ikeys:
            conns = None
            for impl in NAMES:
                r = median_run(runs[key].get(impl, []), "bytes_per_conn")
                idle[(key[1], impl)] = None if r is None else r["bytes_per_conn"]
                conns = conns or (r and r["connections"])
            v = lambda impl: idle[(key[1], impl)]
            cell = lambda x: "failed" if x is None else f"{x:,.0f} B"
            md.append(f"| {conns or 0:,} | {RUNTIME_NAMES.get(key[1], key[1])} | {cell(v('tandem'))} | {cell(v('tungstenite'))} "
                      f"| {cell(v('fastwebsockets'))} | {fmt_ratio(ratio(v('tungstenite'), v('tandem')))} "
                      f"| {fmt_ratio(ratio(v('fastwebsockets'), v('tandem')))} |")
        md.append("")

    # ----- broadcast
    bcast = {}
    bkeys = sorted([k for k in runs if k[0] == "broadcast"],
                   key=lambda k: (k[1], k[2], RUNTIMES.index(k[3]) if k[3] in RUNTIMES else 9))
    if bkeys:
        md.append("**Broadcast** (texts of 64 bytes to every session, `window` of them at once; deliveries/s, the median"
                  " time until the last client has them, and the server's CPU per delivery; ratio = tokio-tungstenite's"
                  " CPU per delivery ÷ tandem's)")
        md.append("")
        md.append("| sessions | window | runtime | tandem | tokio-tungstenite (task + channel per connection) | vs tokio-tungstenite |")
        md.append("|---|---|---|---|---|---|")
        for key in bkeys:
            _, sessions, window, rt = key
            cells = {}
            for impl in ["tandem", "tungstenite"]:
                r = median_run(runs[key].get(impl, []), "deliveries_per_sec")
                c = median_value(runs[key].get(impl, []), lambda r: r.get("server_cpu_us_per_delivery"))
                bcast[(sessions, window, rt, impl)] = c
                if r is None:
                    cells[impl] = "failed"
                    continue
                cells[impl] = (f"{fmt_rate(r['deliveries_per_sec'])}/s, last after {r['last_client_us'] / 1000:.2f} ms"
                               + ("" if c is None else f", {c:.2f} µs CPU"))
            md.append(f"| {sessions:,} | {window} | {RUNTIME_NAMES.get(rt, rt)} | {cells['tandem']} | {cells['tungstenite']} "
                      f"| {fmt_ratio(ratio(bcast[(sessions, window, rt, 'tungstenite')], bcast[(sessions, window, rt, 'tandem')]))} |")
        md.append("")

    dkeys = sorted([k for k in runs if k[0] == "echo-deflate"], key=lambda k: (k[2], k[1], k[3]))
    if dkeys or ("idle-deflate",) in runs:
        md.append("**permessage-deflate** (tandem only: neither tokio-tungstenite 0.30 nor fastwebsockets 0.10 "
                  "implements it), at the documented defaults, offered as browsers do; every echo inflated "
                  "and compared with the text sent; current-thread runtime. Ratio = with compression ÷ without, same run.")
        md.append("")
        md.append("| scenario | tandem, compression on | server CPU per message | vs compression off |")
        md.append("|---|---|---|---|")
        for key in dkeys:
            _, conns, size, window = key
            r = median_run(runs[key].get("tandem", []), "msgs_per_sec")
            plain = median_run(runs.get(("echo", conns, size, window, "current"), {}).get("tandem", []), "msgs_per_sec")
            name = f"echo {conns} × {size_name(size)}, window {window}"
            if r is None:
                md.append(f"| {name} | failed | | |")
                continue
            c = cpu_per_message(r)
            c = "—" if c is None else f"{c:.2f} µs"
            md.append(f"| {name} | {fmt_rate(r['msgs_per_sec'])} msg/s ({r['p50_us']:.0f} / {r['p99_us']:.0f} / "
                      f"{r['p999_us']:.0f} µs) | {c} | {fmt_ratio(ratio(r['msgs_per_sec'], plain and plain['msgs_per_sec']))} |")
        r = median_run(runs.get(("idle-deflate",), {}).get("tandem", []), "bytes_per_conn")
        if r is not None:
            md.append(f"| idle {r['connections']:,} connections | {r['bytes_per_conn']:,.0f} B per connection | | "
                      f"{fmt_ratio(ratio(r['bytes_per_conn'], idle.get(('current', 'tandem'))))} |")
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

    # ----- targets (issue 14's, each on the measure the issue names)
    targets = []
    # Echo at window 1, every payload size, both runtimes: tandem's server
    # CPU per message at most fastwebsockets' (within 3 % counts as level).
    worst = None
    for label, _, key in echo_rows:
        if key[3] != 1:
            continue
        x = ratio(cpu.get((key, "fastwebsockets")), cpu.get((key, "tandem")))
        if x is not None and (worst is None or x < worst[0]):
            worst = (x, f"{label}, {RUNTIME_NAMES.get(key[4], key[4])}")
    targets.append(("echo at window 1, every size and runtime: server CPU per message level with fastwebsockets"
                    " (fastwebsockets ÷ tandem ≥ 0.97)",
                    "lowest " + (f"{worst[0]:.2f}× ({worst[1]})" if worst else "–"),
                    worst is not None and worst[0] >= 0.97))
    for rt in RUNTIMES:
        key = ("echo", 100, 20, 16, rt)
        x = ratio(cpu.get((key, "tungstenite")), cpu.get((key, "tandem")))
        if key in runs:
            targets.append((f"echo 100 × 20 B, window 16, {RUNTIME_NAMES[rt]}: server CPU per message ≥ 3× better than"
                            " tokio-tungstenite", fmt_ratio(x), x is not None and x >= 3))
    key = (10000, 1, "multi")
    x = ratio(bcast.get(key + ("tungstenite",)), bcast.get(key + ("tandem",)))
    targets.append(("broadcast to 10,000 sessions on the multi-thread runtime: ≥ 3× tokio-tungstenite"
                    " (server CPU per delivery)", fmt_ratio(x), x is not None and x >= 3))
    t = idle.get(("current", "tandem"))
    targets.append(("idle memory ≤ 1 KiB per plain connection", "–" if t is None else f"{t:,.0f} B",
                    t is not None and t <= 1024))
    below = t is not None and all(idle.get(("current", p)) is not None and t < idle[("current", p)] for p in PEERS)
    targets.append(("idle memory below both peers", "–" if t is None else
                    ", ".join(f"{NAMES[p]} {idle.get(('current', p)) or 0:,.0f} B" for p in PEERS), below))
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
        f.write(svg(echo_rows, cpu, idle, bcast, a))


def svg(echo_rows, cpu, idle, bcast, a):
    """Two panels: server CPU per message relative to tokio-tungstenite's
    (echo on the current-thread runtime, broadcast on the multi-thread one),
    and idle memory per connection."""
    groups = []
    for label, _, key in echo_rows:
        if key[4] != "current":
            continue
        base = cpu.get((key, "tungstenite"))
        groups.append((label, {i: ratio(base, cpu.get((key, i))) for i in NAMES}))
    for sessions, window, rt in sorted({k[:3] for k in bcast if k[2] == "multi"}):
        base = bcast.get((sessions, window, rt, "tungstenite"))
        groups.append((f"bcast {sessions:,} w{window}",
                       {i: ratio(base, bcast.get((sessions, window, rt, i))) for i in ["tandem", "tungstenite"]}))
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
           f'<text x="{left}" y="{top - 6}" fill="#333">server CPU per message: tokio-tungstenite\'s ÷ each one\'s (higher is better)</text>']
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
    vals = [(i, idle.get(("current", i))) for i in NAMES if idle.get(("current", i)) is not None]
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
