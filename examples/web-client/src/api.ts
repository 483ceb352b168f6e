// The HTTP half of the contract (openapi.yaml): one method per route the page uses.

import type {
  ApiErrorBody,
  ChangesPage,
  Conversation,
  Kind,
  Message,
  MessagePage,
  Page,
  ReadState,
  Ticket,
  User,
} from "./types";

/** An answer other than 2xx: the contract's error object where the function made one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody | null,
    readonly retryAfterSeconds: number | null,
  ) {
    super(body?.message ?? `HTTP ${status}`);
  }
  get code(): string {
    return this.body?.code ?? (this.status === 401 ? "unauthorized" : `http_${this.status}`);
  }
}

/** The request never got an answer (offline, refused, timed out). */
export class NetworkError extends Error {}

export class Api {
  constructor(
    readonly baseUrl: string,
    private token: string,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 15_000);
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
    } catch (error) {
      throw new NetworkError(`${method} ${path}: ${String(error)}`);
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    const json: unknown = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const retry = response.headers.get("retry-after");
      const error = (json as { error?: ApiErrorBody } | null)?.error ?? null;
      throw new ApiError(response.status, error, retry === null ? null : Number(retry));
    }
    return json as T;
  }

  me(): Promise<User> {
    return this.call("GET", "/me");
  }

  listConversations(limit = 50): Promise<Page<Conversation>> {
    return this.call("GET", `/conversations?limit=${limit}`);
  }

  getConversation(id: string): Promise<Conversation> {
    return this.call("GET", `/conversations/${encodeURIComponent(id)}`);
  }

  createConversation(request: {
    participantIds: string[];
    kind?: Kind;
    title?: string;
    clientRequestId?: string;
  }): Promise<Conversation> {
    return this.call("POST", "/conversations", request);
  }

  listMessages(id: string, options: { beforeSeq?: number; limit?: number } = {}): Promise<MessagePage> {
    const query = new URLSearchParams({ limit: String(options.limit ?? 50) });
    if (options.beforeSeq !== undefined) query.set("beforeSeq", String(options.beforeSeq));
    return this.call("GET", `/conversations/${encodeURIComponent(id)}/messages?${query}`);
  }

  changes(id: string, sinceRev: number, limit = 100): Promise<ChangesPage> {
    return this.call(
      "GET",
      `/conversations/${encodeURIComponent(id)}/changes?sinceRev=${sinceRev}&limit=${limit}`,
    );
  }

  sendMessage(id: string, body: string, clientMessageId: string): Promise<Message> {
    return this.call("POST", `/conversations/${encodeURIComponent(id)}/messages`, {
      body,
      clientMessageId,
    });
  }

  editMessage(id: string, seq: number, body: string): Promise<Message> {
    return this.call("PATCH", `/conversations/${encodeURIComponent(id)}/messages/${seq}`, { body });
  }

  unsendMessage(id: string, seq: number): Promise<Message> {
    return this.call("DELETE", `/conversations/${encodeURIComponent(id)}/messages/${seq}`);
  }

  putReaction(id: string, seq: number, emoji: string): Promise<Message> {
    return this.call(
      "PUT",
      `/conversations/${encodeURIComponent(id)}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`,
    );
  }

  deleteReaction(id: string, seq: number, emoji: string): Promise<Message> {
    return this.call(
      "DELETE",
      `/conversations/${encodeURIComponent(id)}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`,
    );
  }

  markRead(id: string, seq: number): Promise<ReadState> {
    return this.call("POST", `/conversations/${encodeURIComponent(id)}/read`, { seq });
  }

  ticket(): Promise<Ticket> {
    return this.call("POST", "/realtime/tickets");
  }
}

/** `GET /_local/token?user=&name=`: the local issuer's development route (local gateway only). */
export async function devToken(baseUrl: string, user: string, name: string): Promise<string> {
  const query = new URLSearchParams({ user });
  if (name) query.set("name", name);
  let response: Response;
  try {
    response = await fetch(`${baseUrl}/_local/token?${query}`);
  } catch (error) {
    throw new NetworkError(String(error));
  }
  if (!response.ok) {
    throw new ApiError(response.status, null, null);
  }
  const body = (await response.json()) as { token: string };
  return body.token;
}
