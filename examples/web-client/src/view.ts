// The chat screen: the list on the left, the open conversation on the right, the connection's
// state on top. Regions are rebuilt from the state on every change; the composer stays put.

import { Chat, REACTIONS, type ConversationState, type PendingMessage } from "./chat";
import { h, replace, time } from "./dom";
import type { Kind, Message } from "./types";

export function conversationTitle(state: ConversationState, me: string): string {
  const conv = state.conv;
  if (conv.kind === "self") return "Note to self";
  const others = conv.members.filter((m) => m.userId !== me);
  if (conv.kind === "group") {
    return conv.title ?? (others.map((m) => m.displayName).join(", ") || "Group");
  }
  return others[0]?.displayName ?? "Direct conversation";
}

function memberName(state: ConversationState, userId: string, me: string): string {
  if (userId === me) return "You";
  return state.conv.members.find((m) => m.userId === userId)?.displayName ?? userId;
}

export class ChatView {
  private readonly status = h("span", { class: "status", "data-testid": "link-status" });
  private readonly banner = h("div", { class: "offline-banner", "data-testid": "offline-banner", hidden: true });
  private readonly notice = h("div", { class: "notice", role: "alert", hidden: true });
  private readonly list = h("ul", { class: "conversation-list", "data-testid": "conversation-list" });
  private readonly header = h("header", { class: "pane-header" });
  private readonly messages = h("ol", { class: "messages", "data-testid": "messages" });
  private readonly scroller = h("div", { class: "scroller" }, this.messages);
  private readonly typingLine = h("div", { class: "typing-line", "data-testid": "typing-indicator", "aria-live": "polite" });
  private readonly input = h("textarea", {
    class: "composer-input",
    "aria-label": "Message",
    placeholder: "Write a message…",
    rows: 1,
  });
  private readonly editingBar = h("div", { class: "editing-bar", hidden: true });
  private readonly composer = h("form", { class: "composer", "data-testid": "composer" });
  private readonly pane = h("section", { class: "pane", "data-testid": "conversation-pane" });
  private editing: number | null = null;
  private pickerFor: number | null = null;
  private scheduled = false;
  private lastOpen: string | null = null;

  constructor(
    private readonly root: HTMLElement,
    private readonly chat: Chat,
    private readonly signOut: () => void,
  ) {}

  mount(): void {
    const me = this.chat.me;
    const newForm = this.newConversationForm();
    this.composer.append(
      this.editingBar,
      this.input,
      h("button", { type: "submit", class: "send" }, "Send"),
    );
    this.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        void this.submit();
      } else if (event.key === "Escape" && this.editing !== null) {
        this.stopEditing();
      }
    });
    this.input.addEventListener("input", () => {
      if (this.editing === null) this.chat.typing(this.input.value);
    });
    replace(
      this.root,
      h(
        "div",
        { class: "app" },
        h(
          "header",
          { class: "topbar" },
          h("strong", { class: "brand" }, "Chat"),
          h(
            "span",
            { class: "whoami", "data-testid": "whoami" },
            me.displayName,
            h("small", null, ` @${me.userId}`),
          ),
          this.status,
          h("button", { type: "button", class: "link", onclick: () => this.signOut() }, "Sign out"),
        ),
        this.banner,
        this.notice,
        h(
          "main",
          { class: "layout" },
          h("aside", { class: "sidebar" }, newForm, this.list),
          this.pane,
        ),
      ),
    );
    this.render();
    setInterval(() => this.renderBanner(), 1_000);
  }

  /** Batches every change of one task into one render. */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.render();
    });
  }

  private render(): void {
    this.renderStatus();
    this.renderBanner();
    this.renderNotice();
    this.renderList();
    this.renderPane();
  }

  private renderStatus(): void {
    const link = this.chat.link;
    const text = { online: "Online", connecting: "Connecting…", offline: "Offline", stopped: "Signed out" }[link.kind];
    this.status.textContent = text;
    this.status.dataset.state = link.kind;
    this.status.dataset.connects = String(this.chat.connects);
  }

  private renderBanner(): void {
    const link = this.chat.link;
    if (link.kind !== "offline") {
      this.banner.hidden = true;
      return;
    }
    const seconds = Math.max(0, Math.ceil((link.retryAt - Date.now()) / 1000));
    this.banner.hidden = false;
    replace(
      this.banner,
      h("strong", null, "You are offline."),
      ` ${seconds > 0 ? `Reconnecting in ${seconds} s` : "Reconnecting…"} (${link.reason}). `,
      h("button", { type: "button", class: "link", onclick: () => this.chat.realtime.retryNow() }, "Reconnect now"),
    );
  }

  private renderNotice(): void {
    const text = this.chat.notice;
    this.notice.hidden = !text;
    if (text) {
      replace(
        this.notice,
        text,
        h("button", { type: "button", class: "link", "aria-label": "Dismiss", onclick: () => this.chat.dismissNotice() }, "×"),
      );
    }
  }

  // ------------------------------------------------------------------ the list

  private newConversationForm(): HTMLFormElement {
    const kind = h(
      "select",
      { name: "kind", "aria-label": "Kind" },
      h("option", { value: "direct" }, "Direct"),
      h("option", { value: "group" }, "Group"),
      h("option", { value: "self" }, "Note to self"),
    );
    const people = h("input", { name: "people", "aria-label": "User ids", placeholder: "user ids, comma-separated" });
    const title = h("input", { name: "title", "aria-label": "Group title", placeholder: "group title (optional)" });
    const sync = (): void => {
      people.disabled = kind.value === "self";
      title.hidden = kind.value !== "group";
    };
    kind.addEventListener("change", sync);
    const start = h("button", { type: "submit" }, "Start");
    const form = h(
      "form",
      { class: "new-conversation", "data-testid": "new-conversation" },
      h("div", { class: "row" }, kind, people),
      title,
      start,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const ids = people.value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      if (kind.value !== "self" && ids.length === 0) {
        people.focus();
        return;
      }
      // One creation at a time; the fields are cleared only if nobody changed them meanwhile.
      const sent = { people: people.value, title: title.value };
      start.disabled = true;
      start.textContent = "Starting…";
      void this.chat.create(kind.value as Kind, ids, title.value).then((id) => {
        start.disabled = false;
        start.textContent = "Start";
        if (id) {
          if (people.value === sent.people) people.value = "";
          if (title.value === sent.title) title.value = "";
          this.input.focus();
        }
      });
    });
    sync();
    return form;
  }

  private renderList(): void {
    const me = this.chat.me.userId;
    const items = this.chat.sortedConversations().map((state) => {
      const conv = state.conv;
      const typing = [...state.typing.keys()];
      const last = conv.lastMessage;
      let line: string;
      if (typing.length > 0) line = `${typing.map((u) => memberName(state, u, me)).join(", ")} typing…`;
      else if (!last) line = "No messages yet";
      else {
        const who = last.senderId === me ? "You: " : conv.kind === "group" ? `${memberName(state, last.senderId, me)}: ` : "";
        line = who + (last.deleted ? "Message unsent" : last.preview);
      }
      const unread = conv.me.unreadCount;
      return h(
        "li",
        {
          class: `conversation${conv.id === this.chat.openId ? " active" : ""}${unread > 0 ? " unread" : ""}`,
          "data-testid": "conversation",
          "data-conversation-id": conv.id,
          "data-kind": conv.kind,
        },
        h(
          "button",
          { type: "button", onclick: () => void this.open(conv.id) },
          h("span", { class: "avatar", "aria-hidden": "true" }, conversationTitle(state, me).slice(0, 1).toUpperCase()),
          h(
            "span",
            { class: "summary" },
            h("span", { class: "title", "data-testid": "conversation-title" }, conversationTitle(state, me)),
            h("span", { class: `last${typing.length ? " typing" : ""}`, "data-testid": "last-message" }, line),
          ),
          h(
            "span",
            { class: "side" },
            h("time", null, time(conv.lastActivityAt)),
            unread > 0 && h("span", { class: "badge", "data-testid": "unread-badge" }, String(unread)),
          ),
        ),
      );
    });
    replace(this.list, items.length ? items : h("li", { class: "empty" }, "No conversations yet"));
  }

  private async open(id: string): Promise<void> {
    this.stopEditing();
    this.pickerFor = null;
    await this.chat.open(id);
    this.input.focus();
  }

  // ------------------------------------------------------------------ the conversation

  private renderPane(): void {
    const id = this.chat.openId;
    const state = id ? this.chat.conversations.get(id) : undefined;
    if (!state) {
      replace(this.pane, h("div", { class: "placeholder" }, "Pick a conversation, or start one."));
      this.lastOpen = null;
      return;
    }
    const me = this.chat.me.userId;
    const switched = this.lastOpen !== id;
    this.lastOpen = id;
    const atBottom =
      switched || this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 40;

    const others = state.conv.members.filter((m) => m.userId !== me);
    replace(
      this.header,
      h("h2", { "data-testid": "conversation-heading" }, conversationTitle(state, me)),
      h(
        "small",
        null,
        state.conv.kind === "group"
          ? `${state.conv.memberCount} members: ${state.conv.members.map((m) => memberName(state, m.userId, me)).join(", ")}`
          : state.conv.kind === "direct"
            ? `@${others[0]?.userId ?? ""}`
            : "Only you can see these",
      ),
    );

    const typing = [...state.typing.keys()].map((u) => memberName(state, u, me));
    this.typingLine.textContent =
      typing.length === 0 ? "" : `${typing.join(", ")} ${typing.length === 1 ? "is" : "are"} typing…`;

    const rows: HTMLElement[] = [];
    if (state.messages === null) {
      rows.push(h("li", { class: "loading" }, "Loading…"));
    } else {
      if (state.hasOlder) {
        rows.push(
          h("li", { class: "older" }, h("button", { type: "button", class: "link", onclick: () => void this.chat.loadOlder() }, "Earlier messages")),
        );
      }
      const receipts = this.receipts(state);
      const sorted = [...state.messages.values()].sort((a, b) => a.seq - b.seq);
      for (const m of sorted) rows.push(this.message(state, m, receipts.get(m.seq) ?? []));
      for (const p of this.chat.outbox.filter((p) => p.conversationId === id)) rows.push(this.pending(p));
      if (sorted.length === 0 && rows.length === 0) rows.push(h("li", { class: "empty" }, "Say hello."));
    }
    replace(this.messages, rows);

    if (!this.pane.contains(this.composer)) {
      replace(this.pane, this.header, this.scroller, this.typingLine, this.composer);
    }
    if (atBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  /** For each message, who has read up to it and no further (a sender's own are not shown). */
  private receipts(state: ConversationState): Map<number, string[]> {
    const me = this.chat.me.userId;
    const out = new Map<number, string[]>();
    if (!state.messages || state.conv.kind === "self") return out;
    const seqs = [...state.messages.keys()].sort((a, b) => a - b);
    for (const member of state.conv.members) {
      if (member.userId === me || member.lastReadSeq === 0) continue;
      let at: number | undefined;
      for (const seq of seqs) {
        if (seq > member.lastReadSeq) break;
        if (state.messages.get(seq)?.senderId !== member.userId) at = seq;
      }
      if (at === undefined) continue;
      // Shown only under messages the reader did not send, after every message of theirs.
      const list = out.get(at) ?? [];
      list.push(member.displayName);
      out.set(at, list);
    }
    return out;
  }

  private message(state: ConversationState, m: Message, readers: string[]): HTMLElement {
    const me = this.chat.me.userId;
    const mine = m.senderId === me;
    const actions: HTMLElement[] = [];
    if (!m.deleted) {
      actions.push(
        h("button", { type: "button", "aria-label": "React", onclick: () => this.togglePicker(m.seq) }, "☺"),
      );
      if (mine) {
        actions.push(
          h("button", { type: "button", "aria-label": "Edit", onclick: () => this.startEditing(m) }, "Edit"),
          h("button", { type: "button", "aria-label": "Unsend", onclick: () => void this.chat.unsend(m.seq) }, "Unsend"),
        );
      }
    }
    const reactions = Object.entries(m.reactions).map(([emoji, users]) => {
      const reacted = users.includes(me);
      return h(
        "button",
        {
          type: "button",
          class: `chip${reacted ? " mine" : ""}`,
          "data-testid": "reaction",
          "data-emoji": emoji,
          title: users.map((u) => memberName(state, u, me)).join(", "),
          "aria-pressed": reacted ? "true" : "false",
          onclick: () => void this.chat.react(m.seq, emoji),
        },
        `${emoji} ${users.length}`,
      );
    });
    return h(
      "li",
      {
        class: `message ${mine ? "mine" : "theirs"}${m.deleted ? " deleted" : ""}`,
        "data-testid": "message",
        "data-seq": m.seq,
        "data-rev": m.rev,
        "data-sender": m.senderId,
      },
      !mine && state.conv.kind === "group" && h("div", { class: "sender" }, memberName(state, m.senderId, me)),
      h(
        "div",
        { class: "bubble-row" },
        h(
          "div",
          { class: "bubble", "data-testid": "message-body" },
          m.deleted ? h("em", null, mine ? "You unsent a message" : "Message unsent") : m.body,
        ),
        actions.length > 0 && h("div", { class: "actions" }, actions),
      ),
      this.pickerFor === m.seq &&
        !m.deleted &&
        h(
          "div",
          { class: "picker", "data-testid": "reaction-picker" },
          REACTIONS.map((emoji) =>
            h(
              "button",
              {
                type: "button",
                "aria-label": `React ${emoji}`,
                onclick: () => {
                  this.pickerFor = null;
                  void this.chat.react(m.seq, emoji);
                },
              },
              emoji,
            ),
          ),
        ),
      reactions.length > 0 && h("div", { class: "reactions" }, reactions),
      h(
        "div",
        { class: "meta" },
        time(m.createdAt),
        m.editedAt && !m.deleted && h("span", { class: "edited", "data-testid": "edited" }, " · edited"),
      ),
      readers.length > 0 && h("div", { class: "receipt", "data-testid": "receipt" }, `Seen by ${readers.join(", ")}`),
    );
  }

  private pending(p: PendingMessage): HTMLElement {
    const status =
      p.state === "sending"
        ? "Sending…"
        : p.state === "queued"
          ? "Waiting for the connection…"
          : `Not sent: ${p.error ?? "failed"}`;
    return h(
      "li",
      { class: `message mine pending ${p.state}`, "data-testid": "pending-message", "data-state": p.state },
      h("div", { class: "bubble-row" }, h("div", { class: "bubble" }, p.body)),
      h(
        "div",
        { class: "meta" },
        status,
        p.state === "failed" && [
          " ",
          h("button", { type: "button", class: "link", onclick: () => this.chat.retry(p.clientMessageId) }, "Retry"),
          " ",
          h("button", { type: "button", class: "link", onclick: () => this.chat.discard(p.clientMessageId) }, "Discard"),
        ],
      ),
    );
  }

  private togglePicker(seq: number): void {
    this.pickerFor = this.pickerFor === seq ? null : seq;
    this.changed();
  }

  private startEditing(m: Message): void {
    this.chat.stopTyping();
    this.editing = m.seq;
    this.input.value = m.body;
    this.editingBar.hidden = false;
    replace(
      this.editingBar,
      "Editing a message",
      h("button", { type: "button", class: "link", onclick: () => this.stopEditing() }, "Cancel"),
    );
    this.input.focus();
  }

  private stopEditing(): void {
    if (this.editing === null) return;
    this.editing = null;
    this.input.value = "";
    this.editingBar.hidden = true;
  }

  private async submit(): Promise<void> {
    const text = this.input.value;
    if (text.trim() === "") return;
    if (this.editing !== null) {
      const seq = this.editing;
      if (await this.chat.edit(seq, text)) this.stopEditing();
      return;
    }
    this.input.value = "";
    await this.chat.send(text);
  }
}
