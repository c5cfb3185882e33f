// Drives the browser echo benchmark (bench/browser/index.html) in headless
// Chromium with playwright-core: starts the release demo server on a free
// port of 127.0.0.1 with this folder as its --www, opens the page, runs every
// scenario ROUNDS times with tandem and plain JavaScript interleaved (each
// round, each scenario: one then the other, the first changing from round
// to round), runs the window-1 scenarios once more under V8's sampling
// profiler (where the renderer's main thread spends a round trip), then
// splits a window-1 round trip into its parts on a second browser's page
// with the probes (?profile), and writes
//
//   bench/results/browser.jsonl   every run, profile and split, one JSON object a line
//   bench/results/browser.md      the tables: the median of the rounds
//
// and refreshes the block between the README's `<!-- bench-browser:start -->`
// and `<!-- bench-browser:end -->`. Run by scripts/bench-browser.sh, which
// builds what this needs; by hand, from the repository root:
//
//   node bench/browser/run.mjs
//
// Settings (environment): TANDEM_SERVER_BIN (default
// ${CARGO_TARGET_DIR:-target}/release/examples/server), CHROMIUM (default
// /usr/bin/chromium), ROUNDS (default 5), COUNT_SCALE (default 1: the number
// of round trips of every scenario is multiplied by it), README (default
// README.md; empty: leave it alone), and PKG_SIZES, the sizes of the package
// for the table's header as the shell script measured them ("wasm raw, wasm
// gzip -9, js raw, js gzip -9", in bytes). playwright-core comes from
// tests/page's node_modules (its package-lock.json pins it). Everything
// started here is stopped by its PID at the end.

import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startDemoServer, stop } from "../../tests/page/processes.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(path.join(ROOT, "tests/page/package.json"));
const { chromium } = require("playwright-core");
const PLAYWRIGHT_VERSION = require("playwright-core/package.json").version;

const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || "target");
const SERVER_BIN = process.env.TANDEM_SERVER_BIN || path.join(TARGET, "release/examples/server");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ROUNDS = Number(process.env.ROUNDS || 5);
const COUNT_SCALE = Number(process.env.COUNT_SCALE || 1);
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1) || !(COUNT_SCALE > 0)) {
  console.error("bench-browser: ROUNDS is a whole number from 1, COUNT_SCALE a number over 0");
  process.exit(2);
}
const README = process.env.README ?? "README.md";
const RESULTS = path.join(ROOT, "bench/results");
const CHROMIUM_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
/** The profile's browser: the document its route fulfils may still reach 127.0.0.1. */
const ISOLATED_ARGS = [...CHROMIUM_ARGS, "--disable-features=LocalNetworkAccessChecks"];
/** The longest one run or split may take. */
const RUN_TIMEOUT_MS = 60_000;

/**
 * The scenarios: binary messages of 16 B, 1 KiB and 64 KiB, one in flight
 * and 16 in flight (the most a tandem page may leave unread: its incoming
 * queue holds 16), and 1 KiB of text (a chat's JSON), with the round trips
 * of each run: about a second each here.
 */
const SCENARIOS = [
  { size: 16, window: 1, count: 2000 },
  { size: 16, window: 16, count: 8000 },
  { size: 1024, window: 1, count: 2000 },
  { size: 1024, window: 16, count: 8000 },
  { size: 65536, window: 1, count: 300 },
  { size: 65536, window: 16, count: 600 },
  { kind: "text", size: 1024, window: 1, count: 2000 },
].map((s) => {
  const count = Math.max(16, Math.round(s.count * COUNT_SCALE));
  return { kind: "binary", ...s, count, warmup: Math.max(16, Math.round(count / 10)) };
});
/** The window-1 splits and CPU profiles: one scenario per size and kind, each run SPLIT_ROUNDS times. */
const SPLITS = SCENARIOS.filter((s) => s.window === 1);
/** The sampling profiler's interval, µs. */
const PROFILER_INTERVAL_US = 50;
const SPLIT_ROUNDS = 2;

/** The demo server on a free port, serving this folder and pkg/; resolves with it and its address. */
function startServer() {
  const args = ["--addr", "127.0.0.1:0", "--www", "bench/browser", "--pkg", "pkg"];
  return startDemoServer(SERVER_BIN, args, { cwd: ROOT });
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: over ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Opens the page and waits for the package. With `isolated`, the page's
 * document is served cross-origin isolated (COOP and COEP added on its way
 * in), so that performance.now() has 5 µs steps rather than 100 µs ones;
 * Chromium then treats the document as coming from outside the machine,
 * and its browser must be launched with ISOLATED_ARGS for the page to
 * reach 127.0.0.1.
 */
async function openPage(browser, addr, { query = "", isolated = false } = {}) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  if (isolated) {
    await page.route(
      (url) => url.pathname === "/",
      async (route) => {
        const response = await route.fetch();
        await route.fulfill({
          response,
          headers: {
            ...response.headers(),
            "cross-origin-opener-policy": "same-origin",
            "cross-origin-embedder-policy": "require-corp",
          },
        });
      },
    );
  }
  await page.goto(`http://${addr}/${query}`);
  await page.waitForSelector("body[data-ready]", { timeout: 30_000 });
  return { page, problems };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const sizeName = (size) => (size >= 1024 ? `${size / 1024} KiB` : `${size} B`);
const scenarioName = (s) => `${sizeName(s.size)}${s.kind === "text" ? " text" : ""}, window ${s.window}`;
const splitName = (s) => `${sizeName(s.size)}${s.kind === "text" ? " text" : ""}`;
const keyOf = (s) => `${s.kind}/${s.size}/${s.window}`;
const int = (x) => Math.round(x).toLocaleString("en-US");
const fixed = (x, digits) => x.toFixed(digits);

/** Bytes per second in kB/s, MB/s (decimal). */
function rate(bytesPerSec) {
  if (bytesPerSec >= 1e6) return `${(bytesPerSec / 1e6).toFixed(1)} MB/s`;
  return `${(bytesPerSec / 1e3).toFixed(0)} kB/s`;
}

/** The package's sizes, against the goal of 30 KiB gzipped. */
function packageLine(sizes) {
  const [wasm, wasmGz, js, jsGz] = (sizes || "").split(/[ ,]+/).map(Number);
  if (!(wasmGz > 0)) return "";
  return `\`pkg/tandem_bg.wasm\` ${int(wasm)} B, ${int(wasmGz)} B gzip -9 (the goal: 30 KiB, 30,720 B); \`pkg/tandem.js\` ${int(js)} B, ${int(jsGz)} B gzip -9`;
}

function sh(command, args) {
  try {
    return execFileSync(command, args, { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

function machine() {
  const cpu = (readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m) || [])[1] || os.cpus()[0]?.model;
  const gib = Math.round(os.totalmem() / 2 ** 30);
  return `${cpu}; ${os.cpus().length} cores; ${gib} GiB; Linux ${os.release()}`;
}

const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");

/** The CPU profile's categories, in the table's order. */
const CPU_PARTS = ["send", "glue", "wasm", "page", "gc", "other"];

/**
 * One timed run (window 1) under V8's sampling profiler (Chrome DevTools
 * Protocol, Profiler domain): the renderer's main thread's time per round
 * trip, by what it ran. send: WebSocket.send itself; glue: tandem.js
 * (wasm-bindgen's JavaScript, with the browser APIs it calls:
 * queueMicrotask, TextDecoder…); wasm: tandem_bg.wasm and the calls across
 * the JS↔wasm boundary; page: bench.js's loop (and the browser APIs it
 * calls); gc: the garbage collector; other: V8 and Blink outside any script
 * (event dispatch, promise jobs). The profile covers the whole run, its
 * connection and close included; idle time is left out.
 */
async function cpuProfile(page, s, impl) {
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: PROFILER_INTERVAL_US });
    await cdp.send("Profiler.start");
    const args = { impl, kind: s.kind, size: s.size, window: 1, count: s.count, warmup: s.warmup };
    const r = await withTimeout(
      page.evaluate((a) => window.bench.measure(a), args),
      `profiled ${impl} ${splitName(s)}`,
    );
    const { profile } = await cdp.send("Profiler.stop");
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
    const scriptPart = (url) =>
      url.endsWith(".wasm") ? "wasm" : url.includes("/pkg/tandem.js") ? "glue" : url.includes("bench.js") ? "page" : "other";
    const part = (node) => {
      const { functionName: name, url } = node.callFrame;
      if (name === "(garbage collector)") return "gc";
      if (name === "(idle)" || name === "(root)") return null;
      if (name.startsWith("(")) return "other";
      if (name.startsWith("js-to-wasm") || name.startsWith("wasm-to-js")) return "wasm";
      if (url) return scriptPart(url);
      if (name === "send") return "send";
      // A browser API: counted with the script that called it.
      for (let id = parent.get(node.id); id !== undefined; id = parent.get(id)) {
        const caller = byId.get(id).callFrame;
        if (caller.url) return scriptPart(caller.url);
        if (caller.functionName.startsWith("js-to-wasm") || caller.functionName.startsWith("wasm-to-js")) return "wasm";
      }
      return "other";
    };
    const us = Object.fromEntries(CPU_PARTS.map((p) => [p, 0]));
    for (let i = 0; i < profile.samples.length; i++) {
      const p = part(byId.get(profile.samples[i]));
      if (p) us[p] += profile.timeDeltas[i + 1] ?? 0;
    }
    const trips = s.count + s.warmup;
    const perTrip = Object.fromEntries(CPU_PARTS.map((p) => [`${p}Us`, us[p] / trips]));
    const busyUs = CPU_PARTS.reduce((sum, p) => sum + us[p], 0) / trips;
    return { impl, kind: s.kind, size: s.size, rtPerSec: r.rtPerSec, wallUs: 1e6 / r.rtPerSec, busyUs, ...perTrip };
  } finally {
    await cdp.detach();
  }
}

function report({ runs, splits, cpu, meta }) {
  const md = ["| | |", "|---|---|"];
  md.push(`| machine | ${meta.machine} |`);
  md.push(`| browser | ${meta.browser} (headless), driven by playwright-core ${PLAYWRIGHT_VERSION} |`);
  md.push(`| server | the demo server (\`examples/server.rs\`, release), route \`/echo-any\`, on 127.0.0.1; permessage-deflate agreed: \`${meta.extensions || "none"}\` |`);
  if (meta.pkg) md.push(`| package | ${meta.pkg} |`);
  md.push(`| commit | ${meta.commit}, run ${meta.started}, ${meta.took} |`);
  md.push(
    `| set-up | messages of noise (text: printable noise), each starting with its number, every echo checked; ${ROUNDS} rounds, each scenario run with one and then the other (the first alternating by round), a new connection for each run; every figure the median of the rounds |`,
  );
  md.push(`| load | load average ${meta.loadBefore} before, ${meta.loadAfter} after; nice ${meta.nice} |`);
  md.push("");
  md.push(
    "**Echo** (round trips per second, and payload bytes echoed per second, one way; tandem ÷ plain: the median of the rounds' ratios, each round's tandem run against its plain one, higher is better for tandem, the range in brackets)",
  );
  md.push("");
  md.push("| scenario | plain JS rt/s | tandem rt/s | tandem ÷ plain | plain JS bytes/s | tandem bytes/s |");
  md.push("|---|---|---|---|---|---|");
  const ratios = [];
  for (const s of SCENARIOS) {
    const of = (impl) => runs.filter((r) => keyOf(r) === keyOf(s) && r.impl === impl);
    const plain = of("plain");
    const tandem = of("tandem");
    const pm = median(plain.map((r) => r.rtPerSec));
    const tm = median(tandem.map((r) => r.rtPerSec));
    // Each round's ratio: the two runs of a pair share the machine's load
    // of the moment, which moves by tens of percent here between rounds.
    const perRound = [];
    for (const t of tandem) {
      const p = plain.find((r) => r.round === t.round);
      if (p) perRound.push(t.rtPerSec / p.rtPerSec);
    }
    const ratio = median(perRound);
    ratios.push({ s, ratio });
    const spread = `${fixed(Math.min(...perRound), 2)}–${fixed(Math.max(...perRound), 2)}`;
    md.push(
      `| ${scenarioName(s)} (${int(s.count)} round trips) | ${int(pm)} | ${int(tm)} | ${fixed(ratio, 2)}× (${spread}) | ${rate(pm * s.size)} | ${rate(tm * s.size)} |`,
    );
  }
  md.push("");
  const lowest = ratios.reduce((a, b) => (b.ratio < a.ratio ? b : a));
  const missed = ratios.filter((r) => r.ratio < 0.9);
  md.push(
    `**Goal**: tandem within 10 % of plain JavaScript (ratio ≥ 0.90) in every scenario: **${missed.length ? "missed" : "met"}**, lowest ${fixed(lowest.ratio, 2)}× (${scenarioName(lowest.s)})` +
      (missed.length ? `; missed in ${missed.length} of ${ratios.length}: ${missed.map((r) => `${scenarioName(r.s)} ${fixed(r.ratio, 2)}×`).join(", ")}.` : "."),
  );
  md.push("");
  md.push(
    `**Where a round trip's time goes** (window 1; µs per round trip, the mean over a run's round trips, the median of ${SPLIT_ROUNDS} runs; page cross-origin isolated: ${meta.isolated ? "yes, 5 µs clock" : "no, 100 µs clock"}). out: from the script's \`send\` to \`WebSocket.send\`; wire: from \`WebSocket.send\` to the echo's message event (Chromium's network process, loopback TCP and the server: the same code for both, but on two cores it also waits for whatever else runs); event: the message handler; in: from the message event until the script has the message (the handler included).`,
  );
  md.push("");
  md.push("| size | | out | wire | event | in | total |");
  md.push("|---|---|---|---|---|---|---|");
  const implName = (impl) => (impl === "plain" ? "plain JS" : "tandem");
  for (const s of SPLITS) {
    for (const impl of ["plain", "tandem"]) {
      const rs = splits.filter((r) => r.size === s.size && r.kind === s.kind && r.impl === impl);
      if (!rs.length) continue;
      const f = (field) => fixed(median(rs.map((r) => r[field])), 0);
      md.push(`| ${splitName(s)} | ${implName(impl)} | ${f("outUs")} | ${f("wireUs")} | ${f("eventUs")} | ${f("inUs")} | ${f("totalUs")} |`);
    }
  }
  md.push("");
  md.push(
    `**The renderer's main thread** (window 1; µs per round trip, V8's sampling profiler every ${PROFILER_INTERVAL_US} µs, the median of ${SPLIT_ROUNDS} runs, after the timed rounds). round trip: the run's wall time per round trip; busy: the main thread's time not idle, split into WebSocket.send; tandem's JavaScript glue (tandem.js, with the browser APIs it calls); its wasm, the JS↔wasm calls included; the page's own loop; the garbage collector; and V8/Blink outside any script (event dispatch, promise jobs).`,
  );
  md.push("");
  md.push("| size | | round trip | busy | send | glue | wasm | page | gc | other |");
  md.push("|---|---|---|---|---|---|---|---|---|---|");
  for (const s of SPLITS) {
    for (const impl of ["plain", "tandem"]) {
      const rs = cpu.filter((r) => r.size === s.size && r.kind === s.kind && r.impl === impl);
      if (!rs.length) continue;
      const f = (field) => (impl === "plain" && (field === "glueUs" || field === "wasmUs") ? "–" : fixed(median(rs.map((r) => r[field])), 0));
      const cells = ["wallUs", "busyUs", ...CPU_PARTS.map((p) => `${p}Us`)].map(f);
      md.push(`| ${splitName(s)} | ${implName(impl)} | ${cells.join(" | ")} |`);
    }
  }
  return md.join("\n") + "\n";
}

function refreshReadme(md) {
  if (!README) return;
  const file = path.resolve(ROOT, README);
  const text = readFileSync(file, "utf8");
  const start = "<!-- bench-browser:start -->";
  const end = "<!-- bench-browser:end -->";
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) {
    console.error(`bench-browser: no ${start} … ${end} block in ${README}; left alone`);
    return;
  }
  writeFileSync(file, text.slice(0, a + start.length) + "\n" + md + text.slice(b));
}

async function main() {
  const t0 = Date.now();
  const started = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const loadBefore = loadavg();
  const server = await startServer();
  console.error(`bench-browser: the demo server is at http://${server.addr}`);
  const records = [];
  const runs = [];
  const splits = [];
  const cpu = [];
  const problems = [];
  let extensions = "";
  let isolated = false;
  let version = "";
  let browser;
  try {
    // The timed runs: a browser and a page as they come.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    version = browser.version();
    const timed = await openPage(browser, server.addr);
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 ? ["tandem", "plain"] : ["plain", "tandem"];
      for (const s of SCENARIOS) {
        for (const impl of order) {
          const args = { impl, kind: s.kind, size: s.size, window: s.window, count: s.count, warmup: s.warmup };
          const r = await withTimeout(
            timed.page.evaluate((a) => window.bench.measure(a), args),
            `${impl} ${scenarioName(s)}`,
          );
          if (r.extensions) extensions = r.extensions;
          const record = { record: "run", round, ...r };
          runs.push(record);
          records.push(record);
          console.error(
            `round ${round}/${ROUNDS} ${impl.padEnd(6)} ${scenarioName(s).padEnd(18)} ${int(r.rtPerSec).padStart(7)} rt/s ${rate(r.bytesPerSec)}`,
          );
        }
      }
    }
    for (let round = 1; round <= SPLIT_ROUNDS; round++) {
      for (const s of SPLITS) {
        for (const impl of round % 2 ? ["tandem", "plain"] : ["plain", "tandem"]) {
          const r = await cpuProfile(timed.page, s, impl);
          cpu.push(r);
          records.push({ record: "cpu", round, ...r });
          console.error(
            `cpu ${impl.padEnd(6)} ${splitName(s).padEnd(10)} ${fixed(r.wallUs, 0)} µs per round trip, busy ${fixed(r.busyUs, 0)}: ${CPU_PARTS.map((p) => `${p} ${fixed(r[`${p}Us`], 0)}`).join(", ")}`,
          );
        }
      }
    }
    problems.push(...timed.problems);
    await browser.close();

    // The splits: another browser, the page isolated and with its probes.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ISOLATED_ARGS });
    const probed = await openPage(browser, server.addr, { query: "?profile", isolated: true });
    for (let round = 1; round <= SPLIT_ROUNDS; round++) {
      for (const s of SPLITS) {
        for (const impl of round % 2 ? ["tandem", "plain"] : ["plain", "tandem"]) {
          const args = { impl, kind: s.kind, size: s.size, count: s.count, warmup: s.warmup };
          const r = await withTimeout(
            probed.page.evaluate((a) => window.bench.profile(a), args),
            `split ${impl} ${splitName(s)}`,
          );
          isolated = r.crossOriginIsolated;
          const record = { record: "split", round, ...r };
          splits.push(record);
          records.push(record);
          console.error(
            `split ${impl.padEnd(6)} ${splitName(s).padEnd(10)} out ${fixed(r.outUs, 0)} wire ${fixed(r.wireUs, 0)} event ${fixed(r.eventUs, 0)} in ${fixed(r.inUs, 0)} total ${fixed(r.totalUs, 0)} µs`,
          );
        }
      }
    }
    problems.push(...probed.problems);
  } finally {
    await browser?.close();
    await stop(server.child);
  }
  for (const problem of problems) console.error(`bench-browser: ${problem}`);
  const meta = {
    machine: machine(),
    browser: `Chromium ${version}`,
    extensions,
    isolated,
    pkg: packageLine(process.env.PKG_SIZES),
    commit: sh("git", ["rev-parse", "--short", "HEAD"]),
    started,
    took: `${Math.round((Date.now() - t0) / 1000)} s`,
    loadBefore,
    loadAfter: loadavg(),
    nice: os.getPriority(),
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(
    path.join(RESULTS, "browser.jsonl"),
    [{ record: "meta", ...meta, rounds: ROUNDS, scenarios: SCENARIOS }, ...records].map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  const md = report({ runs, splits, cpu, meta });
  writeFileSync(path.join(RESULTS, "browser.md"), md);
  refreshReadme(md);
  process.stdout.write(md);
}

main().catch((error) => {
  console.error(`bench-browser: ${error.stack || error}`);
  process.exitCode = 1;
});
