// The child processes of the page test (tests/page/page.test.mjs) and the
// browser benchmark (bench/browser/run.mjs): each is tracked from its start,
// so that none outlives the script, and stopped by its handle (its PID),
// never by name.

import { spawn } from "node:child_process";

/** Every child process started here and still running. */
const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** Tracks `child` until it exits; returns it. */
export function track(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** The children still running. */
export function running() {
  return [...children];
}

/** Stops `child` with `signal`, then SIGKILL after 5 s; resolves once it has exited. */
export async function stop(child, signal = "SIGTERM") {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts the demo server `bin` (examples/server.rs) with `args`, which
 * should bind a port of 127.0.0.1; resolves with the child, the address
 * from its `listening on http://ADDR` line, and its stderr so far.
 */
export async function startDemoServer(bin, args, { cwd }) {
  const child = track(
    spawn(bin, args, {
      cwd,
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "tandem=warn" },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'listening on' line in 30 s: ${stderr}`)), 30_000);
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      const found = /^listening on http:\/\/(\S+)$/m.exec(stdout);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}): ${stderr}`));
    });
  });
  return { child, addr, stderr: () => stderr };
}
