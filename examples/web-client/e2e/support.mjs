// Shared set-up of the end-to-end tests: Debian's Chromium through playwright-core (no browser
// download), the gateway's URLs from the environment, users unique to the run, screenshots.
//
// Environment:
//   WEB_E2E_GATEWAY_URL   the local gateway serving the built page and the API (required),
//                         e.g. http://127.0.0.1:3200 (tools/web-e2e.sh starts one)
//   WEB_E2E_GATEWAY_BIN   the gateway binary, for `local-gateway token` (target/ci/local-gateway);
//                         it must see the gateway's CHAT_STACK_DIR (the issuer's key)
//   WEB_E2E_STATIC_PORT   port of the second origin that serves dist/ (default: any free port)
//   WEB_E2E_ARTIFACTS     screenshots and browser logs (default target/web-e2e)
//   CHROMIUM              the browser (default /usr/bin/chromium)

import { execFileSync } from "node:child_process";
import { createReadStream, mkdirSync, statSync, writeFileSync, appendFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const clientDir = resolve(here, "..");
export const repoRoot = resolve(clientDir, "../..");
export const distDir = join(clientDir, "dist");

export const gatewayUrl = (process.env.WEB_E2E_GATEWAY_URL ?? "").replace(/\/+$/, "");
if (!gatewayUrl) {
  throw new Error("WEB_E2E_GATEWAY_URL is not set: run tools/web-e2e.sh, or point it at a running local gateway");
}
export const wsUrl = `${gatewayUrl.replace(/^http/, "ws")}/local`;
export const gatewayBin = process.env.WEB_E2E_GATEWAY_BIN ?? join(repoRoot, "target/ci/local-gateway");
export const artifacts = resolve(process.env.WEB_E2E_ARTIFACTS ?? join(repoRoot, "target/web-e2e"));
mkdirSync(artifacts, { recursive: true });

/** A suffix that keeps this run's users apart from every earlier run's. */
export const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Debian's Chromium, headless; Playwright gives it a fresh, empty user data dir. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/**
 * A browser context of its own (one user), whose console errors, failed requests and page
 * errors are logged to the artefacts and collected in `problems`.
 */
export async function userContext(browser, label) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  const log = join(artifacts, `${label}.browser.log`);
  writeFileSync(log, "");
  const problems = [];
  const requests = [];
  const sockets = [];
  const framesSent = [];
  const framesReceived = [];
  const responses = [];
  page.on("response", (response) => {
    responses.push({
      method: response.request().method(),
      url: response.url(),
      status: response.status(),
      allowOrigin: response.headers()["access-control-allow-origin"] ?? null,
    });
  });
  page.on("console", (message) => {
    appendFileSync(log, `[console.${message.type()}] ${message.text()}\n`);
  });
  page.on("pageerror", (error) => {
    problems.push(`page error: ${error.message}`);
    appendFileSync(log, `[pageerror] ${error.stack ?? error.message}\n`);
  });
  page.on("request", (request) => {
    requests.push({ method: request.method(), url: request.url(), headers: request.headers() });
    appendFileSync(log, `[request] ${request.method()} ${redact(request.url())}\n`);
  });
  page.on("requestfailed", (request) => {
    appendFileSync(log, `[requestfailed] ${request.method()} ${redact(request.url())} ${request.failure()?.errorText}\n`);
  });
  page.on("websocket", (socket) => {
    sockets.push(socket.url());
    appendFileSync(log, `[websocket] open ${redact(socket.url())}\n`);
    socket.on("close", () => appendFileSync(log, `[websocket] closed\n`));
    socket.on("framereceived", (frame) => {
      framesReceived.push(String(frame.payload));
      appendFileSync(log, `[ws <-] ${String(frame.payload).slice(0, 300)}\n`);
    });
    socket.on("framesent", (frame) => {
      framesSent.push(String(frame.payload));
      appendFileSync(log, `[ws ->] ${String(frame.payload).slice(0, 300)}\n`);
    });
  });
  return { context, page, problems, requests, responses, sockets, framesSent, framesReceived, label };
}

function redact(url) {
  return url.replace(/(ticket|token)=[^&#]+/g, "$1=…");
}

const shots = new Map();
/** A full-page screenshot into the artefacts: `<user>-<nn>-<name>.png`, numbered per user. */
export async function screenshot(user, name) {
  const shot = (shots.get(user.label) ?? 0) + 1;
  shots.set(user.label, shot);
  const file = join(artifacts, `${user.label}-${String(shot).padStart(2, "0")}-${name}.png`);
  await user.page.screenshot({ path: file, fullPage: true });
  return file;
}

/** A token of the local issuer, as `local-gateway token USER --name NAME` prints it. */
export function mintToken(user, name) {
  return execFileSync(gatewayBin, ["token", user, "--name", name, "--ttl", "3600"], {
    encoding: "utf8",
  }).trim();
}

/** Makes a user's profile (`GET /me` with a token from the dev route), as a first sign-in does. */
export async function ensureProfile(user, name) {
  const minted = await fetch(`${gatewayUrl}/_local/token?${new URLSearchParams({ user, name })}`);
  const { token } = await minted.json();
  const me = await fetch(`${gatewayUrl}/me`, { headers: { authorization: `Bearer ${token}` } });
  if (!me.ok) throw new Error(`GET /me for ${user}: ${me.status}`);
  return token;
}

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/**
 * The built page on a second origin (127.0.0.1:<port>), as a static host would serve it in the
 * deployed mode: nothing but files, no API.
 */
export async function serveStatic(port = Number(process.env.WEB_E2E_STATIC_PORT ?? 0)) {
  statSync(join(distDir, "index.html")); // fails loudly when the page is not built
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
    const file = normalize(join(distDir, path === "/" ? "index.html" : path));
    if (!file.startsWith(distDir + sep) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(response);
  });
  await new Promise((done) => server.listen(port, "127.0.0.1", done));
  const address = server.address();
  return { url: `http://127.0.0.1:${address.port}`, close: () => new Promise((done) => server.close(done)) };
}

/** Waits until `predicate` (run in the page) is true. */
export function waitInPage(page, predicate, arg, timeout = 15_000) {
  return page.waitForFunction(predicate, arg, { timeout, polling: 100 });
}
