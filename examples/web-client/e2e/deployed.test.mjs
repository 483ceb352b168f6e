// The deployed-stack mode: the built page served by a plain static server on another origin
// (another loopback port), given the API's two URLs and a token minted outside the page
// (`local-gateway token USER --name NAME`), as it would be given a deployed stack's URLs and a
// token of its issuer. One user connects with the settings form, the other with the URL; they
// chat across origins (CORS on every API call, the socket opened with a ticket).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  gatewayUrl,
  launch,
  mintToken,
  run,
  screenshot,
  serveStatic,
  userContext,
  wsUrl,
} from "./support.mjs";

const WAIT = 20_000;
const STEP = { timeout: 90_000 };
const danaId = `dana-${run}`;
const eveId = `eve-${run}`;

let browser;
let site;
let dana;
let eve;

const conversation = (user, title) =>
  user.page
    .getByTestId("conversation")
    .filter({ has: user.page.getByTestId("conversation-title").getByText(title, { exact: true }) });
const message = (user, text) =>
  user.page
    .getByTestId("message")
    .filter({ has: user.page.getByTestId("message-body").getByText(text, { exact: true }) });
const shown = (locator) => locator.first().waitFor({ state: "visible", timeout: WAIT });

async function textIs(locator, text) {
  const deadline = Date.now() + WAIT;
  let last;
  while (Date.now() < deadline) {
    last = (await locator.first().textContent({ timeout: 1_000 }).catch(() => null))?.trim();
    if (last === text) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`expected the text ${JSON.stringify(text)}, saw ${JSON.stringify(last)}`);
}

async function send(user, text) {
  await user.page.getByLabel("Message").fill(text);
  await user.page.getByLabel("Message").press("Enter");
  await shown(message(user, text));
}

describe("the page on another origin, given the stack's URLs and a token", () => {
  before(async () => {
    site = await serveStatic();
    assert.notEqual(new URL(site.url).origin, new URL(gatewayUrl).origin);
    browser = await launch();
    dana = await userContext(browser, "dana");
    eve = await userContext(browser, "eve");
  });

  after(async () => {
    for (const user of [dana, eve]) {
      if (user) await screenshot(user, "deployed-last").catch(() => undefined);
    }
    await browser?.close();
    await site?.close();
  });

  it("connects with the settings form: HTTP API URL, WebSocket URL, token", STEP, async () => {
    const token = mintToken(danaId, "Dana");
    await dana.page.goto(`${site.url}/`);
    const form = dana.page.getByTestId("stack-settings");
    await form.getByLabel("HTTP API URL").fill(gatewayUrl);
    await form.getByLabel("WebSocket URL").fill(wsUrl);
    await form.getByLabel("Token").fill(token);
    await form.getByRole("button", { name: "Connect" }).click();
    await textIs(dana.page.getByTestId("link-status"), "Online");
    assert.match(await dana.page.getByTestId("whoami").textContent(), /^Dana @dana-/);
    await screenshot(dana, "deployed-connected");
  });

  it("takes the URLs from the query and the token from the fragment, then drops the token from the address", STEP, async () => {
    const token = mintToken(eveId, "Eve");
    const query = new URLSearchParams({ api: gatewayUrl, ws: wsUrl });
    await eve.page.goto(`${site.url}/?${query}#token=${token}`);
    await textIs(eve.page.getByTestId("link-status"), "Online");
    assert.match(await eve.page.getByTestId("whoami").textContent(), /^Eve @eve-/);
    assert.ok(!eve.page.url().includes(token), "the token left the address bar");
    assert.ok(!eve.page.url().includes("token="));
  });

  it("chats across origins in real time: a direct conversation, unread badge, reply, reaction, receipt", STEP, async () => {
    await dana.page.getByLabel("Kind").selectOption("direct");
    await dana.page.getByLabel("User ids").fill(eveId);
    await dana.page.getByRole("button", { name: "Start" }).click();
    await textIs(dana.page.getByTestId("conversation-heading"), "Eve");
    await shown(conversation(eve, "Dana"));
    await send(dana, "Hello from another origin");
    await textIs(conversation(eve, "Dana").getByTestId("unread-badge"), "1");
    await conversation(eve, "Dana").getByRole("button").click();
    await shown(message(eve, "Hello from another origin"));
    await textIs(message(dana, "Hello from another origin").getByTestId("receipt"), "Seen by Eve");
    await send(eve, "Hi Dana, across origins");
    await shown(message(dana, "Hi Dana, across origins"));
    await message(dana, "Hi Dana, across origins").getByRole("button", { name: "React", exact: true }).click();
    await dana.page.getByTestId("reaction-picker").getByRole("button", { name: "React 👍" }).click();
    await textIs(message(eve, "Hi Dana, across origins").locator('[data-testid="reaction"]'), "👍 1");
    await screenshot(dana, "deployed-chat");
    await screenshot(eve, "deployed-chat");
  });

  it("used only the URLs it was given: no dev route, every API call across origins, tickets for the socket", () => {
    const api = new URL(gatewayUrl).origin;
    for (const user of [dana, eve]) {
      assert.equal(new URL(user.page.url()).origin, site.url);
      const calls = user.requests.filter((r) => new URL(r.url).origin === api);
      assert.ok(calls.length > 5, `${user.label} called the API`);
      assert.ok(!calls.some((r) => r.url.includes("/_local/")), "no request to the local issuer's routes");
      // Every answer of the API allowed this page's origin (the gateway's CORS configuration;
      // tools/web-e2e.sh allows exactly this origin) and succeeded.
      const answers = user.responses.filter((r) => new URL(r.url).origin === api);
      assert.ok(answers.length > 5);
      for (const answer of answers) {
        assert.equal(answer.allowOrigin, site.url, `${answer.method} ${answer.url}`);
        assert.ok(answer.status < 400, `${answer.method} ${answer.url}: ${answer.status}`);
      }
      assert.ok(user.sockets.length >= 1);
      assert.ok(user.sockets.every((url) => url.startsWith(`${wsUrl}?ticket=`)));
      assert.deepEqual(user.problems, []);
    }
  });
});
