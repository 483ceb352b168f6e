// Where the page talks to, and who it is:
//
// - Served by the local gateway: the HTTP API is this page's origin, the WebSocket API is
//   `ws://<host>/local`, and "sign in" gets a token from the local issuer's development route
//   (`GET /_local/token?user=&name=`).
// - Anywhere else (a deployed stack): the HTTP API URL, the WebSocket URL and a token, from the
//   settings form or from the URL: `?api=<url>&ws=<url>#token=<jwt>` (the token in the fragment
//   never reaches a server; `?token=` works too). The page removes the token from the address bar.
//
// The session lives in sessionStorage: one per tab, gone when the tab closes.

import "./style.css";
import { Api, ApiError, NetworkError, devToken } from "./api";
import { Chat } from "./chat";
import { h, replace } from "./dom";
import { ChatView } from "./view";

interface Session {
  apiUrl: string;
  wsUrl: string;
  token: string;
}

const SESSION_KEY = "chat.session";
const root = document.getElementById("app") as HTMLElement;

function trimSlash(url: string): string {
  return url.trim().replace(/\/+$/, "");
}

function defaults(): { apiUrl: string; wsUrl: string } {
  const served = location.protocol === "http:" || location.protocol === "https:";
  return {
    apiUrl: served ? location.origin : "http://127.0.0.1:3000",
    wsUrl: served
      ? `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/local`
      : "ws://127.0.0.1:3000/local",
  };
}

/** `?api=&ws=&token=` and `#token=`: a session from the address, then the token is removed. */
function fromAddress(): Partial<Session> {
  const query = new URLSearchParams(location.search);
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const found: Partial<Session> = {};
  const api = query.get("api");
  const ws = query.get("ws");
  const token = fragment.get("token") ?? query.get("token");
  if (api) found.apiUrl = trimSlash(api);
  if (ws) found.wsUrl = trimSlash(ws);
  if (token) {
    found.token = token;
    query.delete("token");
    const search = query.toString();
    history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}`);
  }
  return found;
}

function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function saveSession(session: Session | null): void {
  if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION_KEY);
}

let running: Chat | null = null;

function signOut(message?: string): void {
  running?.stop();
  running = null;
  saveSession(null);
  showSignIn(message);
}

async function startChat(session: Session): Promise<void> {
  replace(root, h("div", { class: "splash" }, "Connecting…"));
  const api = new Api(session.apiUrl, session.token);
  let view: ChatView | null = null;
  const chat = new Chat(
    api,
    session.wsUrl,
    () => view?.changed(),
    () => signOut("The session ended (the token expired or was refused). Sign in again."),
  );
  running = chat;
  try {
    await chat.start();
  } catch (error) {
    if (running !== chat) return;
    chat.stop();
    running = null;
    const why =
      error instanceof NetworkError
        ? `The HTTP API at ${session.apiUrl} did not answer.`
        : error instanceof ApiError
          ? `The HTTP API answered ${error.status}: ${error.message}`
          : String(error);
    saveSession(null);
    showSignIn(why);
    return;
  }
  view = new ChatView(root, chat, () => signOut());
  view.mount();
  // For the end-to-end tests and the curious: the state, read-only by convention.
  (window as unknown as { chat: Chat }).chat = chat;
}

function showSignIn(message?: string): void {
  const base = { ...defaults(), ...fromAddress() };
  const user = h("input", { name: "user", "aria-label": "User id", placeholder: "ada", required: true, maxlength: 128 });
  const name = h("input", { name: "name", "aria-label": "Display name", placeholder: "Ada Lovelace", maxlength: 64 });
  const apiUrl = h("input", { name: "api", "aria-label": "HTTP API URL", value: base.apiUrl, required: true });
  const wsUrl = h("input", { name: "ws", "aria-label": "WebSocket URL", value: base.wsUrl, required: true });
  const token = h("textarea", { name: "token", "aria-label": "Token", placeholder: "eyJhbGciOiJSUzI1NiIs…", rows: 3 });
  const error = h("p", { class: "error", role: "alert", hidden: !message }, message ?? "");
  const fail = (text: string): void => {
    error.textContent = text;
    error.hidden = false;
  };

  const dev = h(
    "form",
    { class: "card", "data-testid": "dev-sign-in" },
    h("h2", null, "Sign in as a development user"),
    h("p", { class: "hint" }, "The local gateway's issuer makes a token for any user id (the gateway at the HTTP API URL beside)."),
    h("label", null, "User id", user),
    h("label", null, "Display name", name),
    h("button", { type: "submit" }, "Sign in"),
  );
  dev.addEventListener("submit", (event) => {
    event.preventDefault();
    const api = trimSlash(apiUrl.value);
    devToken(api, user.value.trim(), name.value.trim())
      .then((jwt) => {
        const session = { apiUrl: api, wsUrl: trimSlash(wsUrl.value), token: jwt };
        saveSession(session);
        void startChat(session);
      })
      .catch((e: unknown) =>
        fail(
          e instanceof NetworkError
            ? `No answer from ${api}: is the local gateway running?`
            : `The token route answered ${e instanceof ApiError ? e.status : String(e)}: it only exists on the local gateway; give a token below.`,
        ),
      );
  });

  const stack = h(
    "form",
    { class: "card", "data-testid": "stack-settings" },
    h("h2", null, "Connect to a stack"),
    h("p", { class: "hint" }, "The HTTP API URL, the WebSocket URL (with its stage) and a token of the stack's issuer."),
    h("label", null, "HTTP API URL", apiUrl),
    h("label", null, "WebSocket URL", wsUrl),
    h("label", null, "Token", token),
    h("button", { type: "submit" }, "Connect"),
  );
  stack.addEventListener("submit", (event) => {
    event.preventDefault();
    const jwt = token.value.trim();
    if (!jwt) {
      fail("A token is needed to connect to a stack.");
      return;
    }
    const session = { apiUrl: trimSlash(apiUrl.value), wsUrl: trimSlash(wsUrl.value), token: jwt };
    saveSession(session);
    void startChat(session);
  });

  replace(
    root,
    h("div", { class: "sign-in" }, h("h1", null, "Chat"), error, h("div", { class: "cards" }, dev, stack)),
  );
}

const saved = loadSession();
const address = fromAddress();
if (address.token) {
  const session = { ...defaults(), ...address } as Session;
  saveSession(session);
  void startChat(session);
} else if (saved) {
  void startChat(saved);
} else {
  showSignIn();
}
