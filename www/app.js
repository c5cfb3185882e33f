// The demo page: an echo panel and a chat panel, each a JavaScript app of
// the browser package in pkg/ (built from www/bindings by wasm-pack, served
// at /pkg): one `WebSocketSession` per connection, tandem's `Session` on the
// browser's WebSocket. Every WebSocket detail (connecting, the queues, the
// close handshake) is tandem's, not this file's.

const BUILD_COMMANDS = [
  "scripts/demo.sh",
  "# or, to build the package only:",
  "wasm-pack build --profile wasm-release --target web --out-dir ../../pkg --out-name tandem www/bindings",
].join("\n");

// Close codes a user may meet here, in words.
const CLOSE_CODES = {
  1000: "normal closure",
  1001: "going away",
  1002: "protocol error",
  1003: "cannot accept",
  1006: "closed abnormally",
  1007: "inconsistent data",
  1008: "policy violation",
  1009: "too big",
  1011: "internal error",
  1012: "service restart",
  1013: "try again later",
};

const LOG_LIMIT = 500;

function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}

function showPackageError(error) {
  const banner = document.getElementById("pkg-error");
  banner.replaceChildren();
  const lead = document.createElement("strong");
  lead.textContent = "The browser package is missing or broken, so the panels cannot connect.";
  const how = document.createElement("p");
  how.textContent = "Build pkg/ from the repository root (the server serves it at /pkg), then reload this page:";
  const commands = document.createElement("pre");
  commands.textContent = BUILD_COMMANDS;
  const detail = document.createElement("p");
  detail.textContent = `Loading ../pkg/tandem.js failed: ${messageOf(error)}`;
  banner.append(lead, how, commands, detail);
  banner.hidden = false;
  document.body.dataset.pkg = "missing";
}

// Close codes after which the chat comes back by itself: the server or the
// way to it is going and coming (tandem's reconnect policy says the same).
const RETRIED = new Set([1001, 1006, 1011, 1012, 1013, 1014]);
// The pauses between attempts: doubling from the first to the last, each
// drawn from [½ d, d] so that pages that lost one server come back spread out.
const BACKOFF_FIRST_MS = 500;
const BACKOFF_LAST_MS = 5_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Wires one panel (`<section data-path="/echo">`) to a WebSocketSession.
 *
 * A panel with `data-format="json"` speaks the chat's JSON protocol
 * (`/chat-json`): each message comes with its id, and when the connection
 * is lost (a server restart, a network blip) the panel reconnects with
 * `?last=ID&name=userN`, gets what it missed, and says how much that was.
 */
function setUpPanel(section, WebSocketSession) {
  const url = `ws://${location.host}${section.dataset.path}`;
  const json = section.dataset.format === "json";
  const $ = (selector) => section.querySelector(selector);
  const state = $(".state");
  const connectButton = $(".connect");
  const disconnectButton = $(".disconnect");
  const log = $(".log");
  const form = $("form");
  const input = $("input");
  const sendButton = $(".send");
  const closedInfo = $(".closed-info");
  const error = $(".error");
  let session = null;
  // Set by Disconnect: the end it brings is final.
  let leaving = false;
  let wakeUp = null;
  // What a JSON chat comes back with.
  const resume = { name: null, last: null };

  $(".url").textContent = url;
  $(".url").title = url;

  function setState(name, label = name) {
    state.dataset.state = name;
    state.textContent = label;
    section.dataset.state = name;
    const idle = name === "idle" || name === "closed";
    connectButton.disabled = !idle;
    disconnectButton.disabled = name !== "open" && name !== "reconnecting";
    input.disabled = name !== "open";
    sendButton.disabled = name !== "open";
  }

  function append(kind, text) {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
    const item = document.createElement("li");
    item.className = kind;
    item.textContent = text;
    log.append(item);
    while (log.childElementCount > LOG_LIMIT) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function showError(text) {
    error.textContent = text;
  }

  function sessionUrl() {
    if (!json || resume.last === null) return url;
    const query = new URLSearchParams({ last: resume.last, name: resume.name });
    return `${url}?${query}`;
  }

  /** Shows one message of the session (`resumed`: it came back after a loss). */
  function show(message, resumed, missed) {
    if (message.type !== "text") return;
    if (!json) {
      append("received", message.data);
      return;
    }
    const event = JSON.parse(message.data);
    if (event.type === "message") {
      resume.last = event.id;
      missed.count += 1;
      append("received", `[${event.from}]: ${event.text}`);
    } else if (event.type === "welcome") {
      resume.name = event.name;
      if (!resumed) {
        append("received", `You are connected! There are ${event.users} users here.`);
        append("note", `you are ${event.name}`);
        return;
      }
      // What came before the welcome is what the page had missed.
      const lost = event.recovered ? "" : "; older ones were too old to recover";
      const plural = missed.count === 1 ? "" : "s";
      append("note", `reconnected as ${event.name} (${event.users} users here): recovered ${missed.count} missed message${plural}${lost}`);
    } else if (event.type === "error") {
      showError(event.text);
    }
  }

  /** One session, from connecting to its end: how it closed, or null if it never opened. */
  async function runSession(resumed) {
    let connected;
    try {
      connected = await WebSocketSession.connect(sessionUrl());
    } catch (e) {
      if (!resumed) {
        append("note", "connection failed");
        showError(`Could not connect to ${url}: ${messageOf(e)}. Is the server running?`);
      }
      return null;
    }
    session = connected;
    setState("open");
    showError("");
    closedInfo.textContent = "";
    if (!resumed) append("note", `connected to ${url}`);
    input.focus();

    // Every message until the session ends (receive() gives null), then how
    // it ended: what the server sent before its Close is shown first.
    const missed = { count: 0 };
    for (let message; (message = await connected.receive()) !== null; ) show(message, resumed, missed);
    const { code, reason } = await connected.closed;
    session = null;
    connected.free();
    const words = CLOSE_CODES[code] ? ` (${CLOSE_CODES[code]})` : "";
    closedInfo.textContent = `Closed with ${code}${words}${reason ? `: ${reason}` : ", no reason given"}`;
    append("note", `closed: ${code} ${reason}`.trimEnd());
    return { code, reason };
  }

  async function connect() {
    showError("");
    closedInfo.textContent = "";
    leaving = false;
    resume.name = resume.last = null;
    setState("connecting");
    let ended = await runSession(false);
    let retries = 0;
    // A JSON chat comes back after a loss, until it is back or told to stop.
    while (json && !leaving && resume.name !== null && (ended === null || RETRIED.has(ended.code))) {
      const delay = Math.min(BACKOFF_FIRST_MS * 2 ** retries, BACKOFF_LAST_MS) * (0.5 + Math.random() / 2);
      retries += 1;
      setState("reconnecting", `reconnecting in ${(delay / 1000).toFixed(1)} s…`);
      await Promise.race([sleep(delay), new Promise((resolve) => (wakeUp = resolve))]);
      if (leaving) break;
      setState("connecting", "reconnecting…");
      ended = await runSession(true);
      if (ended !== null) retries = 0;
    }
    setState("closed");
    if (ended === null || leaving) return;
    const { code, reason } = ended;
    if (code === 1006) {
      showError("The connection was lost without a close handshake: has the server stopped?");
    } else if (code !== 1000 && code !== 1001) {
      showError(`The connection ended with an error: ${code}${reason ? ` ${reason}` : ""}`);
    }
  }

  connectButton.addEventListener("click", () => {
    connect().catch((e) => showError(messageOf(e)));
  });

  disconnectButton.addEventListener("click", () => {
    leaving = true;
    wakeUp?.();
    if (!session) return;
    // Closes with 1000 after the lines sent before; receive() then gives
    // null (a browser hands over no message once it is closing).
    session.close().catch((e) => showError(`Could not close: ${messageOf(e)}`));
    setState("closing", "closing…");
  });

  // A form, so that Enter sends. Lines go out in the order they are typed,
  // whether or not the previous send has finished.
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const line = input.value;
    if (!session || line === "") return;
    const sent = json ? session.sendJson({ text: line }) : session.send(line);
    sent.catch((e) => showError(`Could not send: ${messageOf(e)}`));
    showError("");
    append("sent", line);
    input.value = "";
    input.focus();
  });

  setState("idle", "not connected");
}

document.getElementById("native-hint").textContent =
  `cargo run --example client -- ws://${location.host}/chat`;

let WebSocketSession = null;
try {
  const wasm = await import("../pkg/tandem.js");
  await wasm.default();
  WebSocketSession = wasm.WebSocketSession;
} catch (error) {
  showPackageError(error);
}
if (WebSocketSession) {
  for (const section of document.querySelectorAll("section[data-path]")) {
    setUpPanel(section, WebSocketSession);
  }
  document.body.dataset.pkg = "ready";
}
