// The contract's objects (openapi.yaml) and WebSocket frames (asyncapi.yaml), as the page
// reads them. The server may add fields and event types: unknown ones are ignored.

export type Kind = "direct" | "group" | "self";

export interface User {
  userId: string;
  displayName: string;
  avatarUrl: string | null;
  createdAt: string;
  online: boolean;
  lastSeenAt: string | null;
}

export interface Member {
  userId: string;
  displayName: string;
  role: "owner" | "member";
  joinedAt: string;
  lastReadSeq: number;
}

export interface LastMessage {
  seq: number;
  id: string;
  senderId: string;
  preview: string;
  createdAt: string;
  deleted: boolean;
}

export interface MyState {
  lastReadSeq: number;
  unreadCount: number;
  muted: boolean;
  archived: boolean;
}

export interface Conversation {
  id: string;
  kind: Kind;
  title: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  lastActivityAt: string;
  lastSeq: number;
  rev: number;
  lastMessage: LastMessage | null;
  memberCount: number;
  members: Member[];
  me: MyState;
}

export interface Message {
  id: string;
  conversationId: string;
  seq: number;
  rev: number;
  /** `void`: a number whose write never landed (no sender or body); never shown. */
  kind: "text" | "void";
  senderId: string;
  body: string;
  clientMessageId: string;
  replyToSeq: number | null;
  createdAt: string;
  editedAt: string | null;
  deleted: boolean;
  reactions: Record<string, string[]>;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface MessagePage {
  items: Message[];
  hasMore: boolean;
}

export interface ChangesPage {
  items: Message[];
  hasMore: boolean;
  rev: number;
}

export interface ReadState {
  lastReadSeq: number;
  unreadCount: number;
}

export interface Ticket {
  ticket: string;
  expiresAt: string;
}

export interface ApiErrorBody {
  code: string;
  message: string;
  field?: string;
  details?: { userIds?: string[]; retryAfterSeconds?: number };
}

// ---- Server → client frames.

export interface MessageEvent {
  type: "message.created" | "message.updated" | "message.deleted";
  conversationId: string;
  rev: number;
  message: Message;
}

export interface MessageTruncatedEvent {
  type: "message.created" | "message.updated" | "message.deleted";
  conversationId: string;
  rev: number;
  seq: number;
  truncated: true;
}

export interface ConversationEvent {
  type: "conversation.created" | "conversation.updated";
  conversationId: string;
  conversation: Conversation;
}

export interface MembersEvent {
  type: "member.added" | "member.removed";
  conversationId: string;
  userIds: string[];
}

export interface ReadEvent {
  type: "read";
  conversationId: string;
  userId: string;
  lastReadSeq: number;
}

export interface TypingEvent {
  type: "typing";
  conversationId: string;
  userId: string;
  isTyping: boolean;
}

export interface SendMessageAck {
  type: "ack";
  action: "sendMessage";
  clientMessageId: string;
  message: Message;
}

export interface MarkReadAck {
  type: "ack";
  action: "markRead";
  lastReadSeq: number;
  unreadCount: number;
}

export interface ActionError {
  type: "error";
  action?: string;
  clientMessageId?: string;
  error: { code: string; message: string };
}

export interface Pong {
  type: "pong";
}

export type ServerFrame =
  | MessageEvent
  | MessageTruncatedEvent
  | ConversationEvent
  | MembersEvent
  | ReadEvent
  | TypingEvent
  | SendMessageAck
  | MarkReadAck
  | ActionError
  | Pong;

// ---- Client → server frames.

export type ClientFrame =
  | {
      action: "sendMessage";
      conversationId: string;
      body: string;
      clientMessageId: string;
      replyToSeq?: number;
    }
  | { action: "markRead"; conversationId: string; seq: number }
  | { action: "typing"; conversationId: string; isTyping: boolean }
  | { action: "ping" };
