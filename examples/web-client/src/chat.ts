// The page's state and everything that changes it: the conversation list, the open
// conversation's messages (kept in `rev` order with /changes filling any gap), the outbox, read
// positions, typing, and the catch-up after every (re)connect.

import { Api, ApiError, NetworkError } from "./api";
import { Realtime, type LinkState } from "./realtime";
import type {
  Conversation,
  Kind,
  Member,
  Message,
  MessageEvent,
  ServerFrame,
  User,
} from "./types";

/** How long another member's "is typing" shows without being repeated. */
export const TYPING_SHOWN_MS = 6_000;
/** How often `typing: true` is repeated while typing. */
export const TYPING_REPEAT_MS = 3_000;
/**
 * The least time between two typing frames of one conversation: the server keeps one per 2 s
 * per user and conversation and drops the others silently, so the page waits out the window
 * (and sends the latest wish then) rather than lose a frame.
 */
export const TYPING_GAP_MS = 2_100;
/** How long a send over the socket may wait for its `ack` before it is retried over HTTP. */
export const ACK_TIMEOUT_MS = 8_000;
export const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

export interface ConversationState {
  conv: Conversation;
  /** Loaded when the conversation is first opened; `null` until then. */
  messages: Map<number, Message> | null;
  /** Every change up to this revision is applied to `messages`. */
  rev: number;
  hasOlder: boolean;
  /** userId → when their typing indicator expires (ms since the epoch). */
  typing: Map<string, number>;
  catchingUp: Promise<void> | null;
  catchUpAgain: boolean;
}

export interface PendingMessage {
  clientMessageId: string;
  conversationId: string;
  body: string;
  state: "sending" | "queued" | "failed";
  error?: string;
  ackTimer?: ReturnType<typeof setTimeout>;
}

export class SessionExpired extends Error {}

export function clientId(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The first 100 characters of a body, as the server's `lastMessage.preview`. */
function preview(body: string): string {
  return Array.from(body).slice(0, 100).join("");
}

export class Chat {
  me!: User;
  readonly conversations = new Map<string, ConversationState>();
  openId: string | null = null;
  readonly outbox: PendingMessage[] = [];
  link: LinkState = { kind: "connecting", attempt: 0 };
  notice: string | null = null;
  /** When the socket last opened (for the tests and the status line). */
  connects = 0;
  readonly realtime: Realtime;
  private lastMarkSent = new Map<string, number>();
  private markReadsInFlight: string[] = [];
  /** conversation → when its last typing frame went, and when its last `true` went. */
  private typingFrameAt = new Map<string, number>();
  private typingOnAt = new Map<string, number>();
  private typingDeferred: { id: string; on: boolean } | null = null;
  private typingDeferTimer: ReturnType<typeof setTimeout> | null = null;
  private typingTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly api: Api,
    wsUrl: string,
    private readonly changed: () => void,
    private readonly expired: () => void,
  ) {
    this.realtime = new Realtime(api, wsUrl, {
      onFrame: (frame) => this.onFrame(frame),
      onOpen: () => void this.onOpen(),
      onState: (state) => {
        this.link = state;
        this.changed();
      },
      onUnauthorized: () => this.expired(),
    });
  }

  async start(): Promise<void> {
    this.me = await this.guard(this.api.me());
    await this.refreshList();
    this.realtime.start();
    this.typingTimer = setInterval(() => this.expireTyping(), 1_000);
    document.addEventListener("visibilitychange", () => this.markReadIfNeeded());
  }

  stop(): void {
    this.realtime.stop();
    if (this.typingTimer) clearInterval(this.typingTimer);
  }

  /** Runs a request; a 401 ends the session (the token expired or was refused). */
  private async guard<T>(request: Promise<T>): Promise<T> {
    try {
      return await request;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        this.expired();
        throw new SessionExpired("the token was refused");
      }
      throw error;
    }
  }

  private report(error: unknown, what: string): void {
    if (error instanceof SessionExpired) return;
    if (error instanceof NetworkError) this.notice = `${what}: you are offline`;
    else if (error instanceof ApiError) this.notice = `${what}: ${error.message}`;
    else this.notice = `${what}: ${String(error)}`;
    this.changed();
  }

  dismissNotice(): void {
    this.notice = null;
    this.changed();
  }

  // ------------------------------------------------------------------ the list

  /** The list, most recent activity first. */
  sortedConversations(): ConversationState[] {
    return [...this.conversations.values()]
      .filter((c) => !c.conv.me.archived)
      .sort((a, b) => b.conv.lastActivityAt.localeCompare(a.conv.lastActivityAt));
  }

  async refreshList(): Promise<void> {
    const page = await this.guard(this.api.listConversations(50));
    for (const conv of page.items) this.upsert(conv);
    this.changed();
  }

  /** Takes a conversation view from the server, keeping what is newer locally. */
  private upsert(conv: Conversation): ConversationState {
    const state = this.conversations.get(conv.id);
    if (!state) {
      const created: ConversationState = {
        conv: { ...conv, members: [...conv.members] },
        messages: null,
        rev: 0,
        hasOlder: false,
        typing: new Map(),
        catchingUp: null,
        catchUpAgain: false,
      };
      this.conversations.set(conv.id, created);
      return created;
    }
    const local = state.conv;
    const members = new Map(local.members.map((m) => [m.userId, m]));
    // A single-conversation view holds every member; a list view the first 10.
    const complete = conv.members.length === conv.memberCount;
    const next = new Map<string, Member>();
    for (const m of conv.members) {
      const old = members.get(m.userId);
      next.set(m.userId, { ...m, lastReadSeq: Math.max(m.lastReadSeq, old?.lastReadSeq ?? 0) });
    }
    if (!complete) for (const [id, m] of members) if (!next.has(id)) next.set(id, m);
    const newer = conv.rev >= local.rev;
    const lastSeq = Math.max(local.lastSeq, conv.lastSeq);
    const lastReadSeq = Math.max(local.me.lastReadSeq, conv.me.lastReadSeq);
    state.conv = {
      ...conv,
      members: [...next.values()],
      rev: Math.max(local.rev, conv.rev),
      lastSeq,
      lastMessage: newer ? conv.lastMessage : local.lastMessage,
      lastActivityAt: conv.lastActivityAt > local.lastActivityAt ? conv.lastActivityAt : local.lastActivityAt,
      me: { ...conv.me, lastReadSeq, unreadCount: Math.max(0, lastSeq - lastReadSeq) },
    };
    return state;
  }

  // ------------------------------------------------------------------ catching up

  /** After every (re)connect: the list's first page, then /changes where a `rev` moved. */
  private async onOpen(): Promise<void> {
    this.connects++;
    this.markReadsInFlight = [];
    this.lastMarkSent.clear();
    this.changed();
    try {
      await this.refreshList();
      const opened = [...this.conversations.values()].filter((c) => c.messages !== null);
      await Promise.all(
        opened.map(async (c) => {
          if (c.conv.rev > c.rev) await this.catchUp(c.conv.id);
          // Read positions moved while the socket was down.
          if (c.conv.id === this.openId) this.upsert(await this.guard(this.api.getConversation(c.conv.id)));
        }),
      );
      this.changed();
      this.markReadIfNeeded();
      await this.flushOutbox();
    } catch (error) {
      this.report(error, "Catching up");
    }
  }

  /** `GET /changes?sinceRev=` from the last revision applied, page by page. */
  catchUp(id: string): Promise<void> {
    const state = this.conversations.get(id);
    if (!state || state.messages === null) return Promise.resolve();
    if (state.catchingUp) {
      state.catchUpAgain = true;
      return state.catchingUp;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          state.catchUpAgain = false;
          let hasMore = true;
          while (hasMore) {
            const page = await this.guard(this.api.changes(id, state.rev));
            for (const message of page.items) this.applyMessage(state, message);
            state.rev = Math.max(state.rev, page.rev);
            state.conv.rev = Math.max(state.conv.rev, page.rev);
            hasMore = page.hasMore;
          }
        } while (state.catchUpAgain);
      } finally {
        state.catchingUp = null;
        this.changed();
      }
    };
    state.catchingUp = run();
    return state.catchingUp;
  }

  // ------------------------------------------------------------------ opening

  async open(id: string): Promise<void> {
    this.openId = id;
    this.changed();
    const state = this.conversations.get(id);
    if (!state) return;
    try {
      if (state.messages === null) {
        const detail = await this.guard(this.api.getConversation(id));
        this.upsert(detail);
        const page = await this.guard(this.api.listMessages(id));
        state.messages = new Map();
        for (const m of page.items) this.applyMessage(state, m);
        state.hasOlder = page.hasMore;
        // The view's revision, then /changes for whatever moved since it was read.
        state.rev = detail.rev;
        await this.catchUp(id);
      }
      this.markReadIfNeeded();
    } catch (error) {
      this.report(error, "Opening the conversation");
    }
    this.changed();
  }

  async loadOlder(): Promise<void> {
    const state = this.openId ? this.conversations.get(this.openId) : undefined;
    if (!state?.messages || !state.hasOlder) return;
    const first = Math.min(...state.messages.keys());
    try {
      const page = await this.guard(this.api.listMessages(state.conv.id, { beforeSeq: first }));
      for (const m of page.items) this.applyMessage(state, m);
      state.hasOlder = page.hasMore;
    } catch (error) {
      this.report(error, "Loading earlier messages");
    }
    this.changed();
  }

  // ------------------------------------------------------------------ creating

  async create(kind: Kind, userIds: string[], title: string): Promise<string | null> {
    const participantIds = kind === "self" ? [] : userIds;
    const request: Parameters<Api["createConversation"]>[0] = { participantIds, kind };
    if (kind === "group") {
      request.clientRequestId = clientId("group");
      if (title.trim()) request.title = title.trim();
    }
    try {
      const conv = await this.guard(this.api.createConversation(request));
      this.upsert(conv);
      await this.open(conv.id);
      return conv.id;
    } catch (error) {
      if (error instanceof ApiError && error.code === "unknown_users") {
        const ids = error.body?.details?.userIds ?? [];
        this.notice = `No such user${ids.length === 1 ? "" : "s"}: ${ids.join(", ")} (they must have signed in once)`;
        this.changed();
      } else {
        this.report(error, "Starting the conversation");
      }
      return null;
    }
  }

  // ------------------------------------------------------------------ frames

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "message.created":
      case "message.updated":
      case "message.deleted":
        if ("truncated" in frame) {
          const state = this.conversations.get(frame.conversationId);
          if (state) {
            state.conv.rev = Math.max(state.conv.rev, frame.rev);
            void this.catchUp(frame.conversationId).catch((e) => this.report(e, "Catching up"));
          }
        } else {
          this.applyEvent(frame);
        }
        break;
      case "ack":
        if (frame.action === "sendMessage") {
          this.settle(frame.clientMessageId);
          this.applyEvent({
            type: "message.created",
            conversationId: frame.message.conversationId,
            rev: frame.message.rev,
            message: frame.message,
          });
        } else if (frame.action === "markRead") {
          // The ack names no conversation: answers come in the order the frames went.
          const id = this.markReadsInFlight.shift();
          if (id) this.moveMyRead(id, frame.lastReadSeq);
        }
        break;
      case "error":
        if (frame.action === "markRead") {
          const id = this.markReadsInFlight.shift();
          if (id) this.lastMarkSent.delete(id);
        }
        if (frame.action === "sendMessage" && frame.clientMessageId) {
          const pending = this.outbox.find((p) => p.clientMessageId === frame.clientMessageId);
          if (pending) {
            if (pending.ackTimer) clearTimeout(pending.ackTimer);
            if (frame.error.code === "unavailable" || frame.error.code === "internal") {
              void this.sendOverHttp(pending);
            } else {
              pending.state = "failed";
              pending.error = frame.error.message;
            }
          }
        }
        break;
      case "read": {
        const state = this.conversations.get(frame.conversationId);
        if (!state) break;
        this.moveMemberRead(state, frame.userId, frame.lastReadSeq);
        if (frame.userId === this.me.userId) this.moveMyRead(frame.conversationId, frame.lastReadSeq);
        break;
      }
      case "typing": {
        const state = this.conversations.get(frame.conversationId);
        if (!state || frame.userId === this.me.userId) break;
        if (frame.isTyping) state.typing.set(frame.userId, Date.now() + TYPING_SHOWN_MS);
        else state.typing.delete(frame.userId);
        break;
      }
      case "conversation.created":
      case "conversation.updated":
        this.upsert(frame.conversation);
        break;
      case "member.added":
      case "member.removed": {
        if (frame.type === "member.removed" && frame.userIds.includes(this.me.userId)) {
          this.conversations.delete(frame.conversationId);
          if (this.openId === frame.conversationId) this.openId = null;
          break;
        }
        void this.api
          .getConversation(frame.conversationId)
          .then((conv) => {
            this.upsert(conv);
            this.changed();
          })
          .catch((e) => this.report(e, "Reading the conversation"));
        break;
      }
      default:
        // A frame type this page does not know: the contract lets the server add some.
        return;
    }
    this.changed();
  }

  /** A `message.*` event (or an answer holding a message): applied by `rev`, gaps filled. */
  applyEvent(event: MessageEvent): void {
    const state = this.conversations.get(event.conversationId);
    if (!state) {
      // A conversation this page has not seen: its `conversation.created` went missing.
      void this.refreshList().catch((e) => this.report(e, "Reading the list"));
      return;
    }
    const m = event.message;
    state.conv.rev = Math.max(state.conv.rev, event.rev);
    if (event.type === "message.created") {
      if (m.senderId === this.me.userId) this.moveMyRead(state.conv.id, m.seq);
      this.moveMemberRead(state, m.senderId, m.seq);
      state.typing.delete(m.senderId);
      if (m.createdAt > state.conv.lastActivityAt) state.conv.lastActivityAt = m.createdAt;
      state.conv.me.archived = false;
    }
    this.settle(m.senderId === this.me.userId ? m.clientMessageId : null);
    if (state.messages === null) {
      this.summarize(state, m);
    } else if (event.rev <= state.rev + 1) {
      this.applyMessage(state, m);
      if (event.rev === state.rev + 1) state.rev = event.rev;
    } else {
      // A gap: something between state.rev and event.rev was missed. /changes brings it all,
      // this message included.
      this.applyMessage(state, m);
      void this.catchUp(state.conv.id).catch((e) => this.report(e, "Catching up"));
    }
    if (state.conv.id === this.openId) this.markReadIfNeeded();
  }

  /** Upserts a message by its own `rev` (a repeated or older event changes nothing). */
  private applyMessage(state: ConversationState, m: Message): void {
    // A void holds a number, not a message: nothing to show or to count.
    if (m.kind === "void") return;
    if (state.messages) {
      const current = state.messages.get(m.seq);
      if (!current || m.rev >= current.rev) state.messages.set(m.seq, m);
    }
    this.summarize(state, m);
  }

  /** The list's view of a message: `lastSeq`, `lastMessage`, my unread count. */
  private summarize(state: ConversationState, m: Message): void {
    const conv = state.conv;
    if (m.seq > conv.lastSeq) conv.lastSeq = m.seq;
    if (!conv.lastMessage || m.seq >= conv.lastMessage.seq) {
      conv.lastMessage = {
        seq: m.seq,
        id: m.id,
        senderId: m.senderId,
        preview: m.deleted ? "" : preview(m.body),
        createdAt: m.createdAt,
        deleted: m.deleted,
      };
    }
    conv.me.unreadCount = Math.max(0, conv.lastSeq - conv.me.lastReadSeq);
  }

  private moveMemberRead(state: ConversationState, userId: string, seq: number): void {
    const member = state.conv.members.find((m) => m.userId === userId);
    if (member && seq > member.lastReadSeq) member.lastReadSeq = seq;
  }

  private moveMyRead(id: string, seq: number): void {
    const state = this.conversations.get(id);
    if (!state) return;
    const me = state.conv.me;
    me.lastReadSeq = Math.max(me.lastReadSeq, seq);
    me.unreadCount = Math.max(0, state.conv.lastSeq - me.lastReadSeq);
    this.moveMemberRead(state, this.me.userId, seq);
  }

  // ------------------------------------------------------------------ reading

  /** Marks the open conversation read up to its last message, once per position. */
  markReadIfNeeded(): void {
    const id = this.openId;
    if (!id || document.visibilityState === "hidden") return;
    const state = this.conversations.get(id);
    if (!state || state.messages === null) return;
    const last = state.conv.lastSeq;
    if (last === 0 || last <= state.conv.me.lastReadSeq || last <= (this.lastMarkSent.get(id) ?? 0)) return;
    this.lastMarkSent.set(id, last);
    if (this.realtime.send({ action: "markRead", conversationId: id, seq: last })) {
      this.markReadsInFlight.push(id);
      return;
    }
    this.guard(this.api.markRead(id, last))
      .then((read) => {
        this.moveMyRead(id, read.lastReadSeq);
        this.changed();
      })
      .catch((error) => {
        this.lastMarkSent.delete(id);
        if (!(error instanceof NetworkError)) this.report(error, "Marking as read");
      });
  }

  // ------------------------------------------------------------------ typing

  /** Called on every keystroke in the composer. */
  typing(text: string): void {
    const id = this.openId;
    if (!id) return;
    if (text.trim() === "") {
      // Cleared: tell the others, if they were told I was typing.
      if (this.typingOnAt.has(id)) this.typingFrame(id, false);
      return;
    }
    // Shown on the others' screens for TYPING_SHOWN_MS: repeated while I keep typing.
    if (Date.now() - (this.typingOnAt.get(id) ?? 0) < TYPING_REPEAT_MS) return;
    this.typingFrame(id, true);
  }

  /** Sent a message, or left the composer: no frame (a new message clears the indicator). */
  stopTyping(): void {
    this.typingOnAt.clear();
    this.typingDeferred = null;
  }

  private typingFrame(id: string, on: boolean): void {
    const wait = (this.typingFrameAt.get(id) ?? 0) + TYPING_GAP_MS - Date.now();
    if (wait > 0) {
      this.typingDeferred = { id, on };
      if (on) this.typingOnAt.set(id, Date.now());
      this.typingDeferTimer ??= setTimeout(() => {
        this.typingDeferTimer = null;
        const deferred = this.typingDeferred;
        this.typingDeferred = null;
        if (deferred) this.typingFrame(deferred.id, deferred.on);
      }, wait);
      return;
    }
    if (!this.realtime.send({ action: "typing", conversationId: id, isTyping: on })) return;
    this.typingFrameAt.set(id, Date.now());
    if (on) this.typingOnAt.set(id, Date.now());
    else this.typingOnAt.delete(id);
  }

  private expireTyping(): void {
    const now = Date.now();
    let any = false;
    for (const state of this.conversations.values()) {
      for (const [user, until] of state.typing) {
        if (until <= now) {
          state.typing.delete(user);
          any = true;
        }
      }
    }
    if (any) this.changed();
  }

  // ------------------------------------------------------------------ sending

  async send(body: string): Promise<void> {
    const id = this.openId;
    if (!id || body.trim() === "") return;
    this.stopTyping();
    const pending: PendingMessage = {
      clientMessageId: clientId("web"),
      conversationId: id,
      body,
      state: "sending",
    };
    this.outbox.push(pending);
    this.changed();
    const frame = { action: "sendMessage" as const, conversationId: id, body, clientMessageId: pending.clientMessageId };
    if (this.realtime.send(frame)) {
      // No ack in time: the same clientMessageId over HTTP is safe (idempotent).
      pending.ackTimer = setTimeout(() => void this.sendOverHttp(pending), ACK_TIMEOUT_MS);
      return;
    }
    await this.sendOverHttp(pending);
  }

  private async sendOverHttp(pending: PendingMessage): Promise<void> {
    if (!this.outbox.includes(pending)) return;
    pending.state = "sending";
    this.changed();
    try {
      const message = await this.guard(
        this.api.sendMessage(pending.conversationId, pending.body, pending.clientMessageId),
      );
      this.settle(pending.clientMessageId);
      this.applyEvent({ type: "message.created", conversationId: message.conversationId, rev: message.rev, message });
    } catch (error) {
      if (error instanceof NetworkError || (error instanceof ApiError && error.status >= 500)) {
        pending.state = "queued";
      } else {
        pending.state = "failed";
        pending.error = error instanceof Error ? error.message : String(error);
      }
    }
    this.changed();
  }

  /** Sends what waited for the connection, in order, with the same clientMessageIds. */
  private async flushOutbox(): Promise<void> {
    for (const pending of [...this.outbox]) {
      if (pending.state === "queued") await this.sendOverHttp(pending);
    }
  }

  retry(clientMessageId: string): void {
    const pending = this.outbox.find((p) => p.clientMessageId === clientMessageId);
    if (pending) void this.sendOverHttp(pending);
  }

  discard(clientMessageId: string): void {
    const at = this.outbox.findIndex((p) => p.clientMessageId === clientMessageId);
    if (at >= 0) this.outbox.splice(at, 1);
    this.changed();
  }

  private settle(clientMessageId: string | null): void {
    if (!clientMessageId) return;
    const at = this.outbox.findIndex((p) => p.clientMessageId === clientMessageId);
    if (at < 0) return;
    const [pending] = this.outbox.splice(at, 1);
    if (pending?.ackTimer) clearTimeout(pending.ackTimer);
  }

  // ------------------------------------------------------------------ changing messages

  private async change(what: string, request: Promise<Message>): Promise<boolean> {
    try {
      const message = await this.guard(request);
      this.applyEvent({
        type: message.deleted ? "message.deleted" : "message.updated",
        conversationId: message.conversationId,
        rev: message.rev,
        message,
      });
      this.changed();
      return true;
    } catch (error) {
      this.report(error, what);
      return false;
    }
  }

  edit(seq: number, body: string): Promise<boolean> {
    const id = this.openId;
    if (!id) return Promise.resolve(false);
    return this.change("Editing", this.api.editMessage(id, seq, body));
  }

  unsend(seq: number): Promise<boolean> {
    const id = this.openId;
    if (!id) return Promise.resolve(false);
    return this.change("Unsending", this.api.unsendMessage(id, seq));
  }

  /** Sets my reaction, or removes it when it is already this emoji. */
  react(seq: number, emoji: string): Promise<boolean> {
    const id = this.openId;
    const message = id ? this.conversations.get(id)?.messages?.get(seq) : undefined;
    if (!id || !message) return Promise.resolve(false);
    const mine = message.reactions[emoji]?.includes(this.me.userId) ?? false;
    return this.change(
      "Reacting",
      mine ? this.api.deleteReaction(id, seq, emoji) : this.api.putReaction(id, seq, emoji),
    );
  }
}
