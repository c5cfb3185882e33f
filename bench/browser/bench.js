// The browser echo benchmark: N round trips of one message size through the
// demo server's /echo-any route, with (a) tandem's WebSocketSession from
// /pkg/tandem.js and (b) the browser's WebSocket used directly, the way a
// plain JavaScript app uses it (onmessage, send). Both run a closed loop with
// `window` messages in flight: each echo that comes back sends the next
// message. Every echo is checked: its type, its length, and the sequence
// number at its start.
//
// scripts/bench-browser.sh (bench/browser/run.mjs) loads this page in
// headless Chromium and calls, for each scenario and round,
//
//   await bench.measure({ impl: "tandem" | "plain", kind: "binary" | "text",
//                         size, window, count, warmup })
//
// which resolves with { ms, roundTrips, rtPerSec, bytesPerSec, … }: the time
// from the warmup-th echo to the last one. With `?profile` in the URL the
// page also wraps WebSocket.prototype.send and the onmessage handler that
// tandem (or the plain loop) sets, and `bench.profile(…)` (window 1) splits
// each round trip into where the time went (see splits() below).

import init, { WebSocketSession } from "/pkg/tandem.js";

const PROFILE = new URLSearchParams(location.search).has("profile");

/** Timestamps taken by the probes (profile pages only). */
const probe = { send: [], event: [], handled: [] };

if (PROFILE) installProbes();

/**
 * Wraps WebSocket.prototype.send and the onmessage setter: every call to
 * send, every message event and the end of its handler are timestamped,
 * whoever set the handler (tandem's driver sets it through wasm-bindgen's
 * glue, which assigns `ws.onmessage`).
 */
function installProbes() {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    probe.send.push(performance.now());
    return send.call(this, data);
  };
  const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    configurable: true,
    enumerable: onmessage.enumerable,
    get: onmessage.get,
    set(handler) {
      const wrapped =
        handler &&
        function (event) {
          const at = performance.now();
          try {
            return handler.call(this, event);
          } finally {
            probe.event.push(at);
            probe.handled.push(performance.now());
          }
        };
      onmessage.set.call(this, wrapped);
    },
  });
}

/** `size` bytes of xorshift32 noise from a fixed seed: the same every run, and what deflate cannot shrink. */
function noise(size) {
  const bytes = new Uint8Array(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/**
 * The messages of one run, each starting with its sequence number: binary
 * ones are one buffer with the number rewritten before each send (both
 * WebSocket.send and tandem's send copy at the call), text ones 8 hex
 * digits and then printable noise.
 */
function messages(kind, size) {
  if (size < 8) throw new RangeError("size: 8 bytes at least");
  if (kind === "binary") {
    const bytes = noise(size);
    const view = new DataView(bytes.buffer);
    return {
      next(seq) {
        view.setUint32(0, seq);
        return bytes;
      },
      check(data, seq) {
        if (!(data instanceof ArrayBuffer || data instanceof Uint8Array)) return `not binary: ${typeof data}`;
        if (data.byteLength !== size) return `${data.byteLength} bytes instead of ${size}`;
        const got = data instanceof ArrayBuffer ? new DataView(data).getUint32(0) : new DataView(data.buffer, data.byteOffset).getUint32(0);
        return got === seq ? null : `echo ${got} instead of ${seq}`;
      },
    };
  }
  if (kind === "text") {
    const rest = Array.from(noise(size - 8), (b) => String.fromCharCode(0x21 + (b % 94))).join("");
    const head = (seq) => seq.toString(16).padStart(8, "0");
    return {
      next: (seq) => head(seq) + rest,
      check(data, seq) {
        if (typeof data !== "string") return `not text: ${typeof data}`;
        if (data.length !== size) return `${data.length} characters instead of ${size}`;
        return data.startsWith(head(seq)) ? null : `echo ${data.slice(0, 8)} instead of ${head(seq)}`;
      },
    };
  }
  throw new TypeError(`kind: binary or text, not ${kind}`);
}

const echoUrl = () => `ws://${location.host}/echo-any`;

/**
 * The plain loop: the browser's WebSocket, binaryType "arraybuffer" (as
 * tandem sets it), `window` sends at once and one more from each message
 * event until `total` are sent. `at`, when given, collects per round trip
 * the time of the send (`call`) and of the echo's event (`received`).
 */
async function plainLoop({ kind, size, window, total, warmup, at }) {
  const msgs = messages(kind, size);
  const ws = new WebSocket(echoUrl());
  ws.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("plain WebSocket: the connection failed"));
  });
  let sent = 0;
  let received = 0;
  let start = 0;
  const ms = await new Promise((resolve, reject) => {
    const sendNext = () => {
      at?.call.push(performance.now());
      ws.send(msgs.next(sent++));
    };
    ws.onmessage = (event) => {
      if (at) at.received.push(performance.now());
      const wrong = msgs.check(event.data, received);
      if (wrong) return reject(new Error(`plain: message ${received}: ${wrong}`));
      received += 1;
      if (received === warmup) start = performance.now();
      if (received === total) return resolve(performance.now() - start);
      if (sent < total) sendNext();
    };
    ws.onclose = (event) => reject(new Error(`plain: closed after ${received} echoes: ${event.code} ${event.reason}`));
    for (let i = 0; i < Math.min(window, total); i++) sendNext();
  });
  ws.onmessage = null;
  const extensions = ws.extensions;
  await new Promise((resolve) => {
    ws.onclose = resolve;
    ws.close(1000);
  });
  return { ms, extensions };
}

/**
 * The tandem loop, as the README's "In a JavaScript app" writes one:
 * `await session.send(…)` (backpressure) and `await session.receive()`,
 * `window` sends first, then one more after each echo.
 */
async function tandemLoop({ kind, size, window, total, warmup, at }) {
  const msgs = messages(kind, size);
  const session = await WebSocketSession.connect(echoUrl());
  let sent = 0;
  let start = 0;
  try {
    const sendNext = async () => {
      at?.call.push(performance.now());
      await session.send(msgs.next(sent++));
    };
    while (sent < Math.min(window, total)) await sendNext();
    for (let received = 0; received < total; ) {
      const message = await session.receive();
      if (at) at.received.push(performance.now());
      if (message === null) {
        const { code, reason } = await session.closed;
        throw new Error(`tandem: closed after ${received} echoes: ${code} ${reason}`);
      }
      const wrong = msgs.check(message.data, received);
      if (wrong) throw new Error(`tandem: message ${received}: ${wrong}`);
      received += 1;
      if (received === warmup) start = performance.now();
      if (sent < total) await sendNext();
    }
    return { ms: performance.now() - start };
  } finally {
    await session.close(1000);
    await session.closed;
    session.free();
  }
}

const loops = { plain: plainLoop, tandem: tandemLoop };

/** One timed run; `count` round trips after `warmup` (at least 1) untimed ones. */
async function measure({ impl, kind = "binary", size, window, count, warmup }) {
  const loop = loops[impl];
  if (!loop) throw new TypeError(`impl: plain or tandem, not ${impl}`);
  if (!(warmup >= 1)) throw new RangeError("warmup: 1 at least");
  const { ms, extensions } = await loop({ kind, size, window, total: warmup + count, warmup });
  const result = {
    impl,
    kind,
    size,
    window,
    roundTrips: count,
    ms,
    // What the plain WebSocket agreed with the server (tandem's session
    // runs on the same kind of WebSocket, offering the same).
    extensions,
    rtPerSec: (count * 1000) / ms,
    bytesPerSec: (count * size * 1000) / ms,
  };
  show(result);
  return result;
}

/** The mean of `b[i] - a[i]` over the round trips after `skip`, in µs. */
function meanGap(a, b, skip) {
  let sum = 0;
  let n = 0;
  for (let i = skip; i < Math.min(a.length, b.length); i++) {
    sum += b[i] - a[i];
    n += 1;
  }
  return n ? (sum * 1000) / n : NaN;
}

/**
 * Window 1 only: splits each round trip (mean over `count` after `warmup`,
 * in µs) into
 *   out:   from the script's send call to WebSocket.send (tandem: the
 *          outbox, the outgoing queue and the driver; plain: nothing),
 *   wire:  from WebSocket.send to the echo's message event (the browser's
 *          network process, loopback TCP and the server: the same code for
 *          both),
 *   event: the message event's handler (tandem: the copy into wasm memory
 *          and the push onto the incoming queue),
 *   in:    from the message event to the script having the message
 *          (tandem: the handler, the wake-up of the receive future, the
 *          copy out of wasm memory and the promise),
 *   total: from the send call to the script having the echo.
 */
async function profile({ impl, kind = "binary", size, count, warmup }) {
  if (!PROFILE) throw new Error("profile: load the page with ?profile");
  const loop = loops[impl];
  probe.send.length = probe.event.length = probe.handled.length = 0;
  const at = { call: [], received: [] };
  await loop({ kind, size, window: 1, total: warmup + count, warmup, at });
  return {
    impl,
    kind,
    size,
    roundTrips: count,
    crossOriginIsolated: self.crossOriginIsolated,
    outUs: meanGap(at.call, probe.send, warmup),
    wireUs: meanGap(probe.send, probe.event, warmup),
    eventUs: meanGap(probe.event, probe.handled, warmup),
    inUs: meanGap(probe.event, at.received, warmup),
    totalUs: meanGap(at.call, at.received, warmup),
  };
}

function show(r) {
  const row = document.createElement("tr");
  for (const cell of [r.impl, `${r.size} B ${r.kind}`, r.window, r.roundTrips, r.rtPerSec.toFixed(0), r.bytesPerSec.toFixed(0)]) {
    row.appendChild(document.createElement("td")).textContent = cell;
  }
  document.getElementById("results").appendChild(row);
}

await init();
window.bench = { measure, profile };
document.body.dataset.ready = "1";
