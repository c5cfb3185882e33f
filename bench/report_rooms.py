#!/usr/bin/env python3
"""Turns the JSON lines of scripts/bench-rooms.sh into its Markdown table.

    python3 bench/report_rooms.py bench/results/rooms.jsonl bench/results/rooms.md \
        --machine "..." --rustc "..." --redis "..." --commit abc123 --started ... \
        --load ... --pinning ... --took ... [--readme README.md]

Every figure is the median of the rounds, each column on its own (the
rounds' spread in brackets). With --readme, also refreshes the table
between the README's `<!-- bench-rooms:start -->` and `<!-- bench-rooms:end -->`.
Standard library only.
"""

import argparse
import json
import statistics

WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 6: "six", 8: "eight"}


def setups(runs):
    """(label, name, instances) of the set-ups run: local, then Redis by
    the number of instances."""
    out = [("local", "one instance, LocalBackplane", 1)] if "local" in runs else []
    redis = sorted(
        (rs[0].get("servers", 1), label) for label, rs in runs.items() if label.startswith("redis")
    )
    for n, label in redis:
        many = "one instance" if n == 1 else f"{WORDS.get(n, n)} instances"
        out.append((label, f"{many}, {'Redis' if n == 1 else 'one Redis'}", n))
    return out


def load(path):
    """The loadgen's runs, and Redis's command statistics, by label."""
    runs, redis = {}, {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                into = redis if r.get("mode") == "redis-commandstats" else runs
                into.setdefault(r["label"], []).append(r)
    return runs, redis


def figures(rs, field):
    xs = [r[field] for r in rs if r.get("errors", 1) == 0 and r.get(field) is not None]
    return (statistics.median(xs), min(xs), max(xs)) if xs else None


def fmt(fig, scale=1.0, digits=0, spread=True):
    if fig is None:
        return "–"
    med, lo, hi = (x * scale for x in fig)
    text = f"{med:,.{digits}f}"
    if spread and len({round(lo, digits), round(hi, digits)}) > 1:
        text += f" ({lo:,.{digits}f}–{hi:,.{digits}f})"
    return text


def members(rs):
    r = rs[0]
    servers = r.get("servers", 1)
    each = r["connections"] // servers
    return f"{r['connections']:,}" if servers == 1 else f"{servers} × {each:,}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("out")
    for opt in ["machine", "rustc", "redis", "commit", "started", "load", "pinning", "took", "readme"]:
        ap.add_argument("--" + opt, default="")
    a = ap.parse_args()
    runs, redis = load(a.jsonl)

    md = ["| | |", "|---|---|"]
    md.append(f"| machine | {a.machine} |")
    md.append(f"| toolchain | {a.rustc} |")
    md.append(f"| Redis | {a.redis} |")
    md.append(f"| commit | {a.commit}, run {a.started}, {a.took} |")
    md.append(f"| set-up | {a.pinning} |")
    md.append(f"| load | {a.load} |")
    md.append("")
    md.append(
        "| set-up | members | deliveries/s | last member, p50 / p99 (ms) "
        "| server CPU per delivery (µs) | Redis CPU per message (µs) |"
    )
    md.append("|---|---|---|---|---|---|")
    fit = []
    for label, name, n in setups(runs):
        rs = runs[label]
        if any(r.get("errors", 1) for r in rs):
            md.append(f"| {name} | | failed in {sum(1 for r in rs if r.get('errors', 1))} of {len(rs)} rounds | | | |")
            continue
        last = (
            fmt(figures(rs, "last_client_us"), 1e-3, 2, spread=False)
            + " / "
            + fmt(figures(rs, "p99_last_client_us"), 1e-3, 2, spread=False)
        )
        md.append(
            f"| {name} | {members(rs)} | {fmt(figures(rs, 'deliveries_per_sec'))} | {last} "
            f"| {fmt(figures(rs, 'server_cpu_us_per_delivery'), digits=2)} "
            f"| {fmt(figures(rs, 'redis_cpu_us_per_message'))} |"
        )
        redis_cpu = figures(rs, "redis_cpu_us_per_message")
        if redis_cpu:
            fit.append((n, redis_cpu[0]))
    two = runs.get("redis-2")
    if two and all(r.get("errors", 1) == 0 for r in two):
        own = statistics.median(r["last_client_us_by_server"][0] for r in two) / 1e3
        other = statistics.median(r["last_client_us_by_server"][1] for r in two) / 1e3
        md.append("")
        md.append(
            f"Two instances: the last member of the sending instance had the message after "
            f"{own:.2f} ms (median), the other instance's last member after {other:.2f} ms."
        )
    if len({n for n, _ in fit}) > 1:
        # Least squares: Redis's CPU per message = P + k X, k instances.
        k_mean = statistics.mean(n for n, _ in fit)
        c_mean = statistics.mean(c for _, c in fit)
        x = sum((n - k_mean) * (c - c_mean) for n, c in fit) / sum((n - k_mean) ** 2 for n, _ in fit)
        p = c_mean - x * k_mean
        md.append("")
        md.append(
            f"Redis's CPU per message, fitted (least squares over the medians above) to P + k·X for "
            f"k instances reading the room: P = {p:.0f} µs (the publish), X = {x:.1f} µs (each instance's read)."
        )
    inside = []
    for label, name, _ in setups(runs):
        stats = [s for s in redis.get(label, []) if s["evalsha_calls"] > 0]
        if stats:
            script = statistics.median(s["evalsha_usec"] / s["evalsha_calls"] for s in stats)
            xread = statistics.median(
                s["xread_usec"] / s["evalsha_calls"] / s["servers"] for s in stats
            )
            inside.append(f"{name.split(',')[0]}: the publish script {script:.1f} µs, each instance's XREAD {xread:.1f} µs")
    if inside:
        md.append("")
        md.append(
            "Inside Redis (its own timing of each command, `INFO commandstats`, per message published): "
            + "; ".join(inside)
            + ". The rest of Redis's CPU per message is its network I/O and event loop."
        )
    md.append("")
    md.append(
        "One message in flight at a time (the next is sent when every member has the last one); "
        "the rounds' range in brackets. Last member: the time from sending a message to the last "
        "member (on any instance) having it, p50 and p99 over a run's messages. Server CPU: all "
        "instances, summed, per delivery; Redis CPU: per message published (utime + stime from /proc)."
    )
    text = "\n".join(md) + "\n"
    with open(a.out, "w") as f:
        f.write(text)

    if a.readme:
        with open(a.readme) as f:
            readme = f.read()
        start, end = "<!-- bench-rooms:start -->", "<!-- bench-rooms:end -->"
        i, j = readme.find(start), readme.find(end)
        if 0 <= i < j:
            readme = readme[: i + len(start)] + "\n" + text.rstrip() + "\n" + readme[j:]
            with open(a.readme, "w") as f:
                f.write(readme)


if __name__ == "__main__":
    main()
