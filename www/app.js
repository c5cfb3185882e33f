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

/** Wires one panel (`<section data-path="/echo">`) to a WebSocketSession. */
function setUpPanel(section, WebSocketSession) {
  const url = `ws://${location.host}${section.dataset.path}`;
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

  $(".url").textContent = url;
  $(".url").title = url;

  function setState(name, label = name) {
    state.dataset.state = name;
    state.textContent = label;
    section.dataset.state = name;
    const idle = name === "idle" || name === "closed";
    connectButton.disabled = !idle;
    disconnectButton.disabled = name !== "open";
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

  async function connect() {
    showError("");
    closedInfo.textContent = "";
    setState("connecting");
    let connected;
    try {
      connected = await WebSocketSession.connect(url);
    } catch (e) {
      setState("closed");
      append("note", "connection failed");
      showError(`Could not connect to ${url}: ${messageOf(e)}. Is the server running?`);
      return;
    }
    session = connected;
    setState("open");
    append("note", `connected to ${url}`);
    input.focus();

    // Every message until the session ends (receive() gives null), then how
    // it ended: what the server sent before its Close is shown first.
    for (let message; (message = await connected.receive()) !== null; ) {
      if (message.type === "text") append("received", message.data);
    }
    const { code, reason } = await connected.closed;
    session = null;
    connected.free();
    setState("closed");
    const words = CLOSE_CODES[code] ? ` (${CLOSE_CODES[code]})` : "";
    closedInfo.textContent = `Closed with ${code}${words}${reason ? `: ${reason}` : ", no reason given"}`;
    append("note", `closed: ${code} ${reason}`.trimEnd());
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
    session.send(line).catch((e) => showError(`Could not send: ${messageOf(e)}`));
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
