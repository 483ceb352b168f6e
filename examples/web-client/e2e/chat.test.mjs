// The whole feature list, with two users in two browser contexts of Debian's Chromium, on the
// page the local gateway serves at `/`: sign-in with the local issuer's dev route, the list with
// unread badges and last messages, a note to self, a direct conversation and a group, messages
// in real time over a ticket-opened socket, typing, read receipts, edits, unsends, reactions, and
// a network drop in the middle: the page shows it is offline, reconnects by itself with backoff,
// catches up through /changes without a reload and sends what waited.
//
// Steps run in order and build on each other (one story); each is its own test.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ensureProfile, gatewayUrl, launch, run, screenshot, userContext } from "./support.mjs";

const WAIT = 20_000;
const STEP = { timeout: 90_000 };

const adaId = `ada-${run}`;
const boId = `bo-${run}`;
const cyId = `cy-${run}`;

let browser;
let ada;
let bo;

// ---- locators

const conversation = (user, title) =>
  user.page
    .getByTestId("conversation")
    .filter({ has: user.page.getByTestId("conversation-title").getByText(title, { exact: true }) });
const message = (user, text) =>
  user.page
    .getByTestId("message")
    .filter({ has: user.page.getByTestId("message-body").getByText(text, { exact: true }) });
const messageAt = (user, seq) => user.page.locator(`[data-testid="message"][data-seq="${seq}"]`);
const badge = (user, title) => conversation(user, title).getByTestId("unread-badge");
const lastLine = (user, title) => conversation(user, title).getByTestId("last-message");
const reaction = (locator, emoji) => locator.locator(`[data-testid="reaction"][data-emoji="${emoji}"]`);

const shown = (locator, timeout = WAIT) => locator.first().waitFor({ state: "visible", timeout });
const gone = (locator, timeout = WAIT) => locator.first().waitFor({ state: "hidden", timeout });

/** Waits until the locator's text is exactly `text`. */
async function textIs(locator, text, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = (await locator.first().textContent({ timeout: 1_000 }).catch(() => null))?.trim();
    if (last === text) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`expected the text ${JSON.stringify(text)}, saw ${JSON.stringify(last)}`);
}

async function seqOf(locator) {
  return Number(await locator.first().getAttribute("data-seq"));
}

async function signIn(user, id, name) {
  await user.page.goto(`${gatewayUrl}/`);
  await user.page.getByLabel("User id").fill(id);
  await user.page.getByLabel("Display name").fill(name);
  await user.page.getByRole("button", { name: "Sign in" }).click();
  await textIs(user.page.getByTestId("link-status"), "Online");
}

async function start(user, kind, people = "", title = "") {
  await user.page.getByLabel("Kind").selectOption(kind);
  if (kind !== "self") await user.page.getByLabel("User ids").fill(people);
  if (kind === "group") await user.page.getByLabel("Group title").fill(title);
  // Exactly "Start": while an earlier creation is in flight the button reads "Starting…" (which
  // "Start" alone would match) and is disabled; the click waits until it is back.
  await user.page.getByRole("button", { name: "Start", exact: true }).click();
}

async function send(user, text) {
  const input = user.page.getByLabel("Message");
  await input.fill(text);
  await input.press("Enter");
  await shown(message(user, text));
}

async function react(user, target, emoji) {
  await target.getByRole("button", { name: "React", exact: true }).click();
  await user.page.getByTestId("reaction-picker").getByRole("button", { name: `React ${emoji}` }).click();
}

describe("the web client: two users, every feature, a reconnect in the middle", () => {
  before(async () => {
    browser = await launch();
    ada = await userContext(browser, "ada");
    bo = await userContext(browser, "bo");
    // The third member of the group only needs a profile, as after a first sign-in.
    await ensureProfile(cyId, "Cy");
  });

  after(async () => {
    for (const user of [ada, bo]) {
      if (user) await screenshot(user, "last").catch(() => undefined);
    }
    await browser?.close();
  });

  it("signs each user in with a token from the local issuer's dev route and opens a socket with a ticket", STEP, async () => {
    await signIn(bo, boId, "Bo");
    await signIn(ada, adaId, "Ada");
    for (const [user, name] of [
      [ada, "Ada"],
      [bo, "Bo"],
    ]) {
      assert.match(await user.page.getByTestId("whoami").textContent(), new RegExp(`^${name} @`));
      assert.ok(user.requests.some((r) => r.method === "GET" && r.url.includes("/_local/token?user=")));
      assert.ok(user.requests.some((r) => r.method === "POST" && r.url === `${gatewayUrl}/realtime/tickets`));
      assert.ok(user.sockets.some((url) => url.startsWith(`${gatewayUrl.replace(/^http/, "ws")}/local?ticket=`)));
    }
    await screenshot(ada, "signed-in");
  });

  it("starts a note to self, and finds the same one again", STEP, async () => {
    await start(ada, "self");
    await textIs(ada.page.getByTestId("conversation-heading"), "Note to self");
    await send(ada, "Remember the milk");
    await textIs(lastLine(ada, "Note to self"), "You: Remember the milk");
    await start(ada, "self");
    await textIs(ada.page.getByTestId("conversation-heading"), "Note to self");
    assert.equal(await conversation(ada, "Note to self").count(), 1);
    assert.equal(await ada.page.getByTestId("pending-message").count(), 0);
  });

  it("starts a direct conversation, which the other user's list shows at once", STEP, async () => {
    await start(ada, "direct", boId);
    await textIs(ada.page.getByTestId("conversation-heading"), "Bo");
    await shown(conversation(bo, "Ada"));
    await textIs(lastLine(bo, "Ada"), "No messages yet");
  });

  it("delivers messages in real time, with unread badges and the last message in the list", STEP, async () => {
    await send(ada, "Hello Bo");
    await send(ada, "Are you there?");
    await textIs(badge(bo, "Ada"), "2");
    await textIs(lastLine(bo, "Ada"), "Are you there?");
    await textIs(lastLine(ada, "Bo"), "You: Are you there?");
    assert.equal(await badge(ada, "Bo").count(), 0, "my own messages are read");
    // Sent over the socket, answered with an ack.
    const sent = ada.framesSent.map((f) => JSON.parse(f)).filter((f) => f.action === "sendMessage");
    assert.ok(sent.some((f) => f.body === "Hello Bo" && /^web-[0-9a-f]{24}$/.test(f.clientMessageId)));
    assert.ok(ada.framesReceived.some((f) => f.includes('"action":"sendMessage"') && f.includes('"type":"ack"')));
    await screenshot(bo, "unread-badge");
  });

  it("marks a conversation read when it is opened, and the sender sees the receipt", STEP, async () => {
    await conversation(bo, "Ada").getByRole("button").click();
    await shown(message(bo, "Are you there?"));
    await gone(badge(bo, "Ada"));
    assert.ok(bo.framesSent.some((f) => f.includes('"action":"markRead"')));
    const seq = await seqOf(message(ada, "Are you there?"));
    await textIs(messageAt(ada, seq).getByTestId("receipt"), "Seen by Bo");
  });

  it("shows the other user typing, until their message arrives", STEP, async () => {
    await bo.page.getByLabel("Message").pressSequentially("Hi Ada", { delay: 40 });
    await textIs(ada.page.getByTestId("typing-indicator"), "Bo is typing…");
    await textIs(lastLine(ada, "Bo"), "Bo typing…");
    await screenshot(ada, "typing");
    await bo.page.getByLabel("Message").press("Enter");
    await shown(message(ada, "Hi Ada"));
    await textIs(ada.page.getByTestId("typing-indicator"), "");
  });

  it("edits a message, for both users", STEP, async () => {
    await message(ada, "Hello Bo").getByRole("button", { name: "Edit" }).click();
    const input = ada.page.getByLabel("Message");
    assert.equal(await input.inputValue(), "Hello Bo");
    await input.fill("Hello Bo, edited");
    await input.press("Enter");
    for (const user of [ada, bo]) {
      await shown(message(user, "Hello Bo, edited"));
      await shown(message(user, "Hello Bo, edited").getByTestId("edited"));
      assert.equal(await message(user, "Hello Bo").count(), 0);
    }
  });

  it("sets, replaces and removes reactions, seen by the other user", STEP, async () => {
    const target = (user) => message(user, "Hello Bo, edited");
    await react(bo, target(bo), "❤️");
    await textIs(reaction(target(ada), "❤️"), "❤️ 1");
    // One reaction per user: a new one replaces the old.
    await react(bo, target(bo), "👍");
    await textIs(reaction(target(ada), "👍"), "👍 1");
    await gone(reaction(target(ada), "❤️"));
    // Clicking my own reaction removes it.
    await reaction(target(bo), "👍").click();
    await gone(reaction(target(ada), "👍"));
    // And the other way round.
    await react(ada, message(ada, "Hi Ada"), "😂");
    await textIs(reaction(message(bo, "Hi Ada"), "😂"), "😂 1");
    assert.equal(await reaction(message(bo, "Hi Ada"), "😂").getAttribute("aria-pressed"), "false");
  });

  it("unsends a message, for both users", STEP, async () => {
    const seq = await seqOf(message(ada, "Are you there?"));
    await message(ada, "Are you there?").getByRole("button", { name: "Unsend" }).click();
    await textIs(messageAt(ada, seq).getByTestId("message-body"), "You unsent a message");
    await textIs(messageAt(bo, seq).getByTestId("message-body"), "Message unsent");
    assert.equal(await message(bo, "Are you there?").count(), 0);
    await screenshot(bo, "direct-conversation");
  });

  it("starts a group, which its members see at once, with senders named", STEP, async () => {
    await start(ada, "group", `${boId}, ${cyId}`, "Trip planning");
    await textIs(ada.page.getByTestId("conversation-heading"), "Trip planning");
    await shown(conversation(bo, "Trip planning"));
    await send(ada, "Who is in?");
    await textIs(badge(bo, "Trip planning"), "1");
    await textIs(lastLine(bo, "Trip planning"), "Ada: Who is in?");
    // Bo stays in the direct conversation; the list orders by last activity.
    const titles = await bo.page.getByTestId("conversation-title").allTextContents();
    assert.deepEqual(titles.slice(0, 2), ["Trip planning", "Ada"]);
  });

  it("goes offline, says so, retries with backoff, then catches up through /changes without a reload", STEP, async () => {
    // Both in the direct conversation.
    await conversation(ada, "Bo").getByRole("button").click();
    await shown(message(ada, "Hi Ada"));
    await bo.page.evaluate(() => {
      window.__sameDocument = true;
    });
    const connectsBefore = Number(await bo.page.getByTestId("link-status").getAttribute("data-connects"));
    const requestsBefore = bo.requests.length;

    await bo.context.setOffline(true);
    await textIs(bo.page.getByTestId("link-status"), "Offline");
    await shown(bo.page.getByTestId("offline-banner"));
    assert.match(await bo.page.getByTestId("offline-banner").textContent(), /You are offline\./);

    // Meanwhile Ada writes, edits, reacts, unsends, and writes in the group.
    await send(ada, "While you were away");
    await message(ada, "While you were away").getByRole("button", { name: "Edit" }).click();
    await ada.page.getByLabel("Message").fill("While you were away (edited)");
    await ada.page.getByLabel("Message").press("Enter");
    await shown(message(ada, "While you were away (edited)"));
    await react(ada, message(ada, "Hi Ada"), "🙏");
    await textIs(reaction(message(ada, "Hi Ada"), "🙏"), "🙏 1");
    await send(ada, "Oops, wrong chat");
    const oops = await seqOf(message(ada, "Oops, wrong chat"));
    await message(ada, "Oops, wrong chat").getByRole("button", { name: "Unsend" }).click();
    await textIs(messageAt(ada, oops).getByTestId("message-body"), "You unsent a message");
    await conversation(ada, "Trip planning").getByRole("button").click();
    await send(ada, "Group news");
    await conversation(ada, "Bo").getByRole("button").click();

    // Bo writes while offline: the message waits for the connection.
    await bo.page.getByLabel("Message").fill("Sent while offline");
    await bo.page.getByLabel("Message").press("Enter");
    const waiting = bo.page.getByTestId("pending-message");
    await textIs(waiting.locator(".meta"), "Waiting for the connection…");
    // Nothing of Ada's reached Bo.
    assert.equal(await message(bo, "While you were away").count(), 0);
    assert.equal(await message(bo, "While you were away (edited)").count(), 0);

    // The retries back off: attempt n waits between half and all of 1 s × 2^n.
    await bo.page.waitForFunction(() => window.chat.link.kind === "offline" && window.chat.link.attempt >= 2, null, {
      timeout: WAIT,
    });
    const link = await bo.page.evaluate(() => window.chat.link);
    const ceiling = Math.min(30_000, 1_000 * 2 ** link.attempt);
    assert.ok(link.delayMs >= ceiling / 2 && link.delayMs <= ceiling, JSON.stringify(link));
    assert.match(await bo.page.getByTestId("offline-banner").textContent(), /Reconnecting (in \d+ s|…)/);
    await screenshot(bo, "offline");

    await bo.context.setOffline(false);
    await textIs(bo.page.getByTestId("link-status"), "Online");
    await bo.page.waitForFunction((n) => window.chat.connects > n, connectsBefore, { timeout: WAIT });
    await gone(bo.page.getByTestId("offline-banner"));

    // Caught up, without a reload.
    await shown(message(bo, "While you were away (edited)"));
    await shown(message(bo, "While you were away (edited)").getByTestId("edited"));
    await textIs(reaction(message(bo, "Hi Ada"), "🙏"), "🙏 1");
    await textIs(messageAt(bo, oops).getByTestId("message-body"), "Message unsent");
    await textIs(badge(bo, "Trip planning"), "2");
    await textIs(lastLine(bo, "Trip planning"), "Ada: Group news");
    assert.equal(await bo.page.evaluate(() => window.__sameDocument), true, "the page was not reloaded");
    const after = bo.requests.slice(requestsBefore).map((r) => `${r.method} ${r.url}`);
    const direct = await conversation(bo, "Ada").getAttribute("data-conversation-id");
    assert.ok(
      after.some((r) => r.startsWith(`GET ${gatewayUrl}/conversations/${direct}/changes?sinceRev=`)),
      `no /changes request for the open conversation among ${after.join(", ")}`,
    );
    assert.ok(after.some((r) => r.startsWith(`GET ${gatewayUrl}/conversations?`)), "the list was read again");
    assert.ok(after.some((r) => r === `POST ${gatewayUrl}/realtime/tickets`), "a new ticket");

    // What Bo wrote offline went out, with the clientMessageId it got then.
    await shown(message(ada, "Sent while offline"));
    await gone(bo.page.getByTestId("pending-message"));
    await shown(message(bo, "Sent while offline"));
    // Bo read everything on catching up: Ada sees the receipt on her newest message.
    await shown(messageAt(ada, oops).getByTestId("receipt"));
    await textIs(messageAt(ada, oops).getByTestId("receipt"), "Seen by Bo");
    await screenshot(bo, "caught-up");
    await screenshot(ada, "caught-up");
  });

  it("keeps working in real time after the reconnect", STEP, async () => {
    await send(bo, "Back online");
    await shown(message(ada, "Back online"));
    await react(ada, message(ada, "Back online"), "👍");
    await textIs(reaction(message(bo, "Back online"), "👍"), "👍 1");
    await conversation(bo, "Trip planning").getByRole("button").click();
    await shown(message(bo, "Group news"));
    await gone(badge(bo, "Trip planning"));
    await send(bo, "See you at 8 🎉");
    await screenshot(bo, "group");
    // Ada, in the direct conversation, gets the group's badge and sees Bo typing to her.
    await textIs(badge(ada, "Trip planning"), "1");
    await textIs(lastLine(ada, "Trip planning"), "Bo: See you at 8 🎉");
    await conversation(bo, "Ada").getByRole("button").click();
    await bo.page.getByLabel("Message").pressSequentially("On my", { delay: 40 });
    await textIs(ada.page.getByTestId("typing-indicator"), "Bo is typing…");
    await screenshot(ada, "overview");
  });

  it("raised no page errors", () => {
    assert.deepEqual([...ada.problems, ...bo.problems], []);
  });
});
