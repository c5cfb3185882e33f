// End-to-end test of the demo page (www/) in headless Chromium, driven by
// playwright-core: two pages and the native `client` example chat through
// the demo server, the echo panel greets and closes, and the page shows
// what went wrong when the package or the server is missing.
//
// Run by scripts/test-page.sh, which builds what this needs. By hand, from
// the repository root, with pkg/ and the debug examples built:
//
//   node --test tests/page/page.test.mjs
//
// Settings (environment): TANDEM_SERVER_BIN and TANDEM_CLIENT_BIN (default:
// ${CARGO_TARGET_DIR:-target}/debug/examples/{server,client}), CHROMIUM
// (default /usr/bin/chromium), TANDEM_TEST_OUTPUT (default test-output/).
// Only 127.0.0.1 is used; everything started here is stopped at the end.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { running, startDemoServer, stop, track } from "./processes.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || "target");
const SERVER_BIN = process.env.TANDEM_SERVER_BIN || path.join(TARGET, "debug/examples/server");
const CLIENT_BIN = process.env.TANDEM_CLIENT_BIN || path.join(TARGET, "debug/examples/client");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OUTPUT = path.resolve(ROOT, process.env.TANDEM_TEST_OUTPUT || "test-output");
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
const WAIT_MS = 15_000;

/** Polls `check` until it returns a truthy value; fails after `ms`. */
async function waitUntil(check, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts the demo server (on a free port unless `addr` is given); resolves with its address. */
function startServer({ pkg = "pkg", addr = "127.0.0.1:0", args = [] } = {}) {
  return startDemoServer(SERVER_BIN, ["--addr", addr, "--www", "www", "--pkg", pkg, ...args], { cwd: ROOT });
}

/** A free port of 127.0.0.1 (free when this returns). */
async function freePort() {
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A private redis-server on a free port, without persistence; stopped by its PID. */
async function startRedis() {
  const port = await freePort();
  const child = track(
    spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: ["ignore", "ignore", "pipe"],
    }),
  );
  await waitUntil(
    () =>
      new Promise((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        socket.once("error", () => resolve(false));
        socket.once("connect", () => socket.write("PING\r\n"));
        socket.once("data", (reply) => {
          socket.destroy();
          resolve(reply.toString().startsWith("+PONG"));
        });
      }),
    "redis-server to answer",
  );
  return { child, url: `redis://127.0.0.1:${port}/` };
}

/** The native `client` example on `url`: its stdout lines, and its stdin. */
function startNativeClient(url) {
  const child = track(spawn(CLIENT_BIN, [url], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] }));
  const lines = [];
  let stderr = "";
  createInterface({ input: child.stdout }).on("line", (line) => lines.push(line));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    stderr: () => stderr,
    send: (line) => child.stdin.write(`${line}\n`),
    endInput: () => child.stdin.end(),
  };
}

/** Opens the demo page and waits until the wasm package is loaded. */
async function openPage(browser, addr) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  await page.goto(`http://${addr}/`);
  await page.waitForSelector("body[data-pkg]", { timeout: WAIT_MS });
  return { page, problems };
}

const panel = (page, name) => ({
  state: () => page.getAttribute(`#${name} .state`, "data-state"),
  received: () => page.$$eval(`#${name} .log li.received`, (items) => items.map((li) => li.textContent)),
  sent: () => page.$$eval(`#${name} .log li.sent`, (items) => items.map((li) => li.textContent)),
  notes: () => page.$$eval(`#${name} .log li.note`, (items) => items.map((li) => li.textContent)),
  closedInfo: () => page.textContent(`#${name} .closed-info`),
  error: () => page.textContent(`#${name} .error`),
  async connect() {
    await page.click(`#${name} .connect`);
    await page.waitForSelector(`#${name} .state[data-state="open"]`, { timeout: WAIT_MS });
  },
  // Enter in the input box sends, as a person would.
  async type(line) {
    await page.fill(`#${name} input`, line);
    await page.press(`#${name} input`, "Enter");
  },
  async sendWithButton(line) {
    await page.fill(`#${name} input`, line);
    await page.click(`#${name} .send`);
  },
});

const welcome = (count) => `You are connected! There are ${count} users here.`;

describe("the demo page", { timeout: 180_000 }, () => {
  let browser;
  let server;

  before(async () => {
    mkdirSync(OUTPUT, { recursive: true });
    server = await startServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  });

  after(async () => {
    await browser?.close();
    for (const child of running()) await stop(child);
  });

  test("two pages and the native client chat, and the echo panel greets and closes", async () => {
    const a = await openPage(browser, server.addr);
    const b = await openPage(browser, server.addr);
    for (const { page } of [a, b]) {
      assert.equal(await page.getAttribute("body", "data-pkg"), "ready");
      assert.equal(await page.textContent("#chat .url"), `ws://${server.addr}/chat-json`);
      assert.equal(await panel(page, "chat").state(), "idle");
    }
    const chatA = panel(a.page, "chat");
    const chatB = panel(b.page, "chat");

    // The room names its members user0, user1, … in the order they join.
    await chatA.connect();
    await waitUntil(async () => (await chatA.received()).includes(welcome(1)), "page A's welcome");
    await chatB.connect();
    await waitUntil(async () => (await chatB.received()).includes(welcome(2)), "page B's welcome");
    const native = startNativeClient(`ws://${server.addr}/chat`);
    await waitUntil(() => native.lines.includes(welcome(3)), `the native client's welcome (${native.stderr()})`);

    const messages = [
      "[user0]: hello from page A",
      "[user1]: hello from page B",
      "[user2]: hello from the terminal",
    ];
    const everyoneHas = async (count) => {
      const want = messages.slice(0, count);
      const seen = [await chatA.received(), await chatB.received(), native.lines];
      return seen.every((lines) => want.every((m) => lines.includes(m)));
    };
    await chatA.type("hello from page A");
    await waitUntil(() => everyoneHas(1), "page A's line everywhere");
    await chatB.sendWithButton("hello from page B");
    await waitUntil(() => everyoneHas(2), "page B's line everywhere");
    native.send("hello from the terminal");
    await waitUntil(() => everyoneHas(3), "the native client's line everywhere");

    assert.deepEqual(await chatA.received(), [welcome(1), ...messages]);
    assert.deepEqual(await chatB.received(), [welcome(2), ...messages]);
    assert.deepEqual(native.lines, [welcome(3), ...messages]);
    assert.deepEqual(await chatA.sent(), ["hello from page A"]);
    assert.equal(await a.page.inputValue("#chat input"), "", "the input is cleared after sending");

    // The echo panel, on page A while its chat stays open.
    const echoA = panel(a.page, "echo");
    assert.equal(await a.page.textContent("#echo .url"), `ws://${server.addr}/echo`);
    await echoA.connect();
    await waitUntil(async () => (await echoA.received()).includes("Please enter your name"), "the echo greeting");
    await echoA.type("Ktor");
    await waitUntil(async () => (await echoA.received()).includes("Hi, Ktor!"), "Hi, Ktor!");
    await echoA.type("bye");
    await waitUntil(async () => (await echoA.state()) === "closed", "the echo panel to close");
    assert.deepEqual(await echoA.received(), ["Please enter your name", "Hi, Ktor!"]);
    const info = await echoA.closedInfo();
    assert.match(info, /\b1000\b/);
    assert.match(info, /Client said BYE/);
    assert.equal(await echoA.error(), "");
    assert.equal(await a.page.isDisabled("#echo input"), true, "no input once closed");
    assert.equal(await a.page.isEnabled("#echo .connect"), true, "can connect again");

    await a.page.screenshot({ path: path.join(OUTPUT, "page-a.png"), fullPage: true });
    await b.page.screenshot({ path: path.join(OUTPUT, "page-b.png"), fullPage: true });

    // The native client closes with 1000 once its input ends (after a grace
    // period for replies); page B disconnects with its button.
    native.endInput();
    assert.equal(await native.exited, 0);
    assert.match(native.lines.at(-1), /^closed: 1000\b/);
    await b.page.click("#chat .disconnect");
    await waitUntil(async () => (await chatB.state()) === "closed", "page B's chat to close");
    assert.match(await chatB.closedInfo(), /\b1000\b/);
    assert.equal(await chatB.error(), "");

    for (const { page, problems } of [a, b]) {
      assert.deepEqual(problems, [], "no errors in the page");
      await page.close();
    }
  });

  test("the chat page comes back after its server is killed and shows what it recovered", async () => {
    const redis = await startRedis();
    const onRedis = ["--redis", redis.url];
    const doomed = await startServer({ args: onRedis });
    const other = await startServer({ args: onRedis });
    const { page, problems } = await openPage(browser, doomed.addr);
    const chat = panel(page, "chat");
    await chat.connect();
    await waitUntil(async () => (await chat.received()).includes(welcome(1)), "the page's welcome");
    assert.ok((await chat.notes()).includes("you are user0"));
    await chat.type("before the crash");
    await waitUntil(async () => (await chat.received()).includes("[user0]: before the crash"), "the page's line");

    // Its server dies; on the other server of the same Redis, the chat goes on.
    await stop(doomed.child, "SIGKILL");
    await waitUntil(async () => (await chat.state()) === "reconnecting", "the page to reconnect");
    const native = startNativeClient(`ws://${other.addr}/chat`);
    await waitUntil(() => native.lines.some((l) => l.startsWith("You are connected!")), `the native client's welcome (${native.stderr()})`);
    native.send("while you were away");
    native.send("and this too");
    await waitUntil(() => native.lines.includes("[user1]: and this too"), "the native client's lines");

    // The server comes back on the same address: the page resumes there.
    const back = await startServer({ addr: doomed.addr, args: onRedis });
    await waitUntil(async () => (await chat.state()) === "open", "the page to be back", 30_000);
    await waitUntil(
      async () => (await chat.notes()).some((n) => /^reconnected as user0 .*: recovered 2 missed messages$/.test(n)),
      "the page to say what it recovered",
    );
    assert.deepEqual(await chat.received(), [
      welcome(1),
      "[user0]: before the crash",
      "[user1]: while you were away",
      "[user1]: and this too",
    ]);
    // Live again, under its old name.
    await chat.type("I am back");
    await waitUntil(() => native.lines.includes("[user0]: I am back"), "the page's line on the other server");
    assert.equal(await chat.error(), "");
    await page.screenshot({ path: path.join(OUTPUT, "page-chat-recovered.png"), fullPage: true });
    assert.deepEqual(problems.filter((p) => p.startsWith("page error")), []);
    await page.close();
    native.endInput();
    await native.exited;
    for (const child of [back.child, other.child, redis.child]) await stop(child);
  });

  test("the page says how to build a missing package", async () => {
    const empty = mkdtempSync(path.join(tmpdir(), "tandem-empty-pkg-"));
    try {
      const bare = await startServer({ pkg: empty });
      const { page, problems } = await openPage(browser, bare.addr);
      assert.equal(await page.getAttribute("body", "data-pkg"), "missing");
      assert.equal(await page.isVisible("#pkg-error"), true);
      assert.match(await page.textContent("#pkg-error"), /wasm-pack build --profile wasm-release --target web/);
      assert.equal(await page.isDisabled("#chat .connect"), true);
      assert.deepEqual(problems.filter((p) => p.startsWith("page error")), []);
      await page.close();
      await stop(bare.child);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test("the page shows a lost connection and a server that is down", async () => {
    const doomed = await startServer();
    const { page, problems } = await openPage(browser, doomed.addr);
    const echo = panel(page, "echo");
    await echo.connect();
    await waitUntil(async () => (await echo.received()).includes("Please enter your name"), "the echo greeting");

    await stop(doomed.child, "SIGKILL");
    await waitUntil(async () => (await echo.state()) === "closed", "the echo panel to see the server go");
    assert.match(await echo.closedInfo(), /\b1006\b/);
    assert.match(await echo.error(), /lost/);

    await page.click("#chat .connect");
    await waitUntil(async () => (await panel(page, "chat").error()) !== "", "an error in the chat panel");
    assert.match(await panel(page, "chat").error(), /Could not connect to ws:\/\/.*\/chat/);
    assert.equal(await panel(page, "chat").state(), "closed");
    await page.screenshot({ path: path.join(OUTPUT, "page-server-down.png"), fullPage: true });
    assert.deepEqual(problems.filter((p) => p.startsWith("page error")), []);
    await page.close();
  });
});
