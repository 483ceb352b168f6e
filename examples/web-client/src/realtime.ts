// The WebSocket half of the contract (asyncapi.yaml): a ticket from `POST /realtime/tickets`, then
// `<wsUrl>?ticket=…`; reconnects by itself with exponential backoff and jitter, pings to notice a
// dead link, and says which state it is in.

import type { Api } from "./api";
import { ApiError, NetworkError } from "./api";
import type { ClientFrame, ServerFrame } from "./types";

export type LinkState =
  | { kind: "connecting"; attempt: number }
  | { kind: "online" }
  | { kind: "offline"; retryAt: number; delayMs: number; attempt: number; reason: string }
  | { kind: "stopped" };

export interface RealtimeOptions {
  /** First retry delay; doubles per failed attempt up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A ping this often; no answer within `pongTimeoutMs` closes the socket and reconnects. */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
}

/**
 * The delay before reconnect attempt `attempt` (0-based): exponential, capped, with "equal
 * jitter" (half fixed, half random), so a crowd of clients dropped at once does not come back in
 * step, and no retry is immediate.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export class Realtime {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private generation = 0;
  state: LinkState = { kind: "connecting", attempt: 0 };
  private readonly options: Required<RealtimeOptions>;

  constructor(
    private readonly api: Api,
    private readonly wsUrl: string,
    private readonly handlers: {
      onFrame: (frame: ServerFrame) => void;
      onOpen: () => void;
      onState: (state: LinkState) => void;
      onUnauthorized: () => void;
    },
    options: RealtimeOptions = {},
  ) {
    this.options = {
      baseDelayMs: options.baseDelayMs ?? 1_000,
      maxDelayMs: options.maxDelayMs ?? 30_000,
      pingIntervalMs: options.pingIntervalMs ?? 25_000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
    };
    window.addEventListener("offline", this.onBrowserOffline);
    window.addEventListener("online", this.onBrowserOnline);
  }

  get isOpen(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener("offline", this.onBrowserOffline);
    window.removeEventListener("online", this.onBrowserOnline);
    this.clearTimers();
    this.generation++;
    this.socket?.close(1000, "bye");
    this.socket = null;
    this.setState({ kind: "stopped" });
  }

  /** Sends a frame if the socket is open; false when it is not (the caller falls back to HTTP). */
  send(frame: ClientFrame): boolean {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Reconnects now instead of waiting for the backoff timer. */
  retryNow(): void {
    if (this.stopped || this.state.kind !== "offline") return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.connect();
  }

  private setState(state: LinkState): void {
    this.state = state;
    this.handlers.onState(state);
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.retryTimer = this.pingTimer = this.pongTimer = null;
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    this.clearTimers();
    this.setState({ kind: "connecting", attempt: this.attempt });
    let ticket: string;
    try {
      ticket = (await this.api.ticket()).ticket;
    } catch (error) {
      if (generation !== this.generation) return;
      if (error instanceof ApiError && error.status === 401) {
        this.handlers.onUnauthorized();
        return;
      }
      const wait =
        error instanceof ApiError && error.retryAfterSeconds !== null ? error.retryAfterSeconds * 1000 : 0;
      const reason =
        error instanceof NetworkError
          ? "the API does not answer"
          : error instanceof ApiError
            ? `the ticket was refused: ${error.status} ${error.code}`
            : String(error);
      this.scheduleRetry(reason, wait);
      return;
    }
    if (generation !== this.generation) return;
    const separator = this.wsUrl.includes("?") ? "&" : "?";
    const socket = new WebSocket(`${this.wsUrl}${separator}ticket=${encodeURIComponent(ticket)}`);
    this.socket = socket;
    socket.onopen = () => {
      if (generation !== this.generation) return;
      this.attempt = 0;
      this.setState({ kind: "online" });
      this.pingTimer = setInterval(() => this.ping(generation), this.options.pingIntervalMs);
      this.handlers.onOpen();
    };
    socket.onmessage = (event) => {
      if (generation !== this.generation || typeof event.data !== "string") return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(event.data) as ServerFrame;
      } catch {
        return;
      }
      if (frame.type === "pong" && this.pongTimer) {
        clearTimeout(this.pongTimer);
        this.pongTimer = null;
      }
      this.handlers.onFrame(frame);
    };
    socket.onclose = (event) => {
      if (generation !== this.generation) return;
      this.socket = null;
      this.scheduleRetry(event.code === 1006 ? "connection lost" : `closed (${event.code})`);
    };
    // An error is always followed by close.
    socket.onerror = () => undefined;
  }

  private ping(generation: number): void {
    if (generation !== this.generation || !this.send({ action: "ping" })) return;
    if (this.pongTimer) return;
    this.pongTimer = setTimeout(() => {
      if (generation !== this.generation) return;
      this.drop("no pong");
    }, this.options.pongTimeoutMs);
  }

  /** Gives up on the current socket (it may never report its close) and reconnects later. */
  private drop(reason: string): void {
    this.generation++;
    const socket = this.socket;
    this.socket = null;
    socket?.close();
    this.scheduleRetry(reason);
  }

  private scheduleRetry(reason: string, atLeastMs = 0): void {
    if (this.stopped) return;
    this.clearTimers();
    const delay = Math.max(
      atLeastMs,
      backoffDelay(this.attempt, this.options.baseDelayMs, this.options.maxDelayMs),
    );
    const attempt = this.attempt++;
    this.setState({ kind: "offline", retryAt: Date.now() + delay, delayMs: delay, attempt, reason });
    const generation = this.generation;
    this.retryTimer = setTimeout(() => {
      if (generation === this.generation && !this.stopped) void this.connect();
    }, delay);
  }

  private readonly onBrowserOffline = (): void => {
    if (this.stopped) return;
    this.drop("the browser is offline");
  };

  private readonly onBrowserOnline = (): void => {
    if (this.stopped || this.state.kind === "online") return;
    // Back online: a fresh start of the backoff, and a try at once unless one is under way.
    this.attempt = 0;
    this.retryNow();
  };
}
