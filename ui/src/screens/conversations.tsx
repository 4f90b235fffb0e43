import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, errorMessage, isApiError, type ChatMessage, type ConversationSummary } from "../api";
import type { ScreenId } from "../app";
import { Empty, ErrorBox, Loading } from "../components";
import { when } from "../format";
import { useLive } from "../load";

const statusLabels: Record<string, [string, string]> = {
  accepted: ["🕓", "Sending"],
  sent: ["✓", "Sent"],
  delivered: ["✓✓", "Delivered"],
  read: ["✓✓", "Read"],
  failed: ["!", "Not delivered"],
};

const kindLabels: Record<string, string> = {
  template: "Template",
  interactive: "Buttons",
  button: "Button tap",
  button_reply: "Button tap",
  list_reply: "List choice",
  receipt: "Receipt",
  reminder: "Reminder",
};

function DeliveryStatus(props: { status: string }) {
  const [ticks, label] = statusLabels[props.status] ?? ["", props.status];
  return (
    <span class={`delivery delivery-${props.status}`}>
      {ticks && <span aria-hidden="true">{ticks} </span>}
      {label}
    </span>
  );
}

function Bubble(props: { message: ChatMessage }) {
  const m = props.message;
  const fromCustomer = m.direction === "in";
  const failed = m.status === "failed";
  return (
    <li
      class={`bubble ${fromCustomer ? "from-customer" : "from-business"}${failed ? " failed" : ""}`}
      data-message-id={m.id}
      aria-label={fromCustomer ? "Customer" : "Your business"}
    >
      {m.kind !== "text" && <div class="kind">{kindLabels[m.kind] ?? m.kind}</div>}
      <div class="body">{m.body}</div>
      <div class="meta">
        <time dateTime={m.at}>{when(m.at)}</time>
        {!fromCustomer && m.status && <DeliveryStatus status={m.status} />}
      </div>
    </li>
  );
}

/** The free-text reply box, shown once a person has taken over the chat. */
function ReplyBox(props: { chat: ConversationSummary; onSent: () => Promise<void> }) {
  const [text, setText] = useState("");
  const [sending, setSending] = useState(false);
  const [problem, setProblem] = useState<string>();
  const [closedNow, setClosedNow] = useState(false);
  const windowOpen = props.chat.window_open && !closedNow;

  const send = async () => {
    if (sending || !windowOpen) return;
    if (text.trim() === "") {
      setProblem("Write a message first.");
      return;
    }
    setSending(true);
    setProblem(undefined);
    try {
      await api.sendMerchantReply(props.chat.customer_id, text.trim());
      setText("");
      await props.onSent();
    } catch (e) {
      const code = isApiError(e) ? e.code : "";
      if (code === "outside_window") setClosedNow(true);
      else if (code === "empty") setProblem("Write a message first.");
      else if (code === "not_human") {
        setProblem("The bot is answering this chat again. Press “Take over” before you reply.");
        await props.onSent();
      } else setProblem(`Not sent: ${errorMessage(e)}`);
    } finally {
      setSending(false);
    }
  };

  return (
    <form
      class="reply"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      {!windowOpen && (
        <p class="window-closed" role="note" id="window-note">
          <strong>More than 24 hours since {props.chat.customer_name} last wrote.</strong> WhatsApp only lets a business send its
          own approved message templates after 24 hours, so free text is switched off for this chat. Sending templates from here is
          not in this version yet; it is coming. Free text opens again as soon as the customer writes to you.
        </p>
      )}
      <div class="reply-row">
        <textarea
          aria-label="Reply"
          aria-describedby={windowOpen ? undefined : "window-note"}
          placeholder={windowOpen ? `Write to ${props.chat.customer_name}… (Enter sends, Shift+Enter for a new line)` : "Free text is not allowed after 24 hours"}
          rows={2}
          value={text}
          disabled={!windowOpen || sending}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey) {
              e.preventDefault();
              void send();
            }
          }}
        />
        <button type="submit" class="primary" disabled={!windowOpen || sending}>
          {sending ? "Sending…" : "Send"}
        </button>
      </div>
      {sending && (
        <div class="sub" role="status">
          <span class="spinner" /> Sending on WhatsApp…
        </div>
      )}
      {problem && (
        <div class="reply-problem" role="alert">
          {problem}
        </div>
      )}
    </form>
  );
}

/** One customer's chat: bubbles, who is answering, and the reply box. */
function Chat(props: { chat: ConversationSummary; onChanged: () => Promise<void> }) {
  const c = props.chat;
  const messages = useLive(() => api.conversationMessages(c.customer_id), c.customer_id, 5000);
  const [busy, setBusy] = useState<"take" | "back">();
  const [problem, setProblem] = useState<string>();
  const scroller = useRef<HTMLOListElement>(null);
  const human = c.handled_by === "human";

  useEffect(() => {
    const el = scroller.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [messages.data]);

  const toggle = async () => {
    setBusy(human ? "back" : "take");
    setProblem(undefined);
    try {
      await (human ? api.handBack(c.customer_id) : api.takeOver(c.customer_id));
      await props.onChanged();
    } catch (e) {
      setProblem(errorMessage(e));
    } finally {
      setBusy(undefined);
    }
  };

  const afterSend = async () => {
    await Promise.all([messages.refresh(), props.onChanged()]);
  };

  return (
    <div class="chat" data-testid="chat" aria-label={`Chat with ${c.customer_name}`} role="region">
      <header class="chat-head">
        <div>
          <h2>{c.customer_name}</h2>
          <div class="sub">
            {c.phone} · {human ? "You are answering; the bot is paused" : "The payment bot is answering"}
            {c.opted_out && " · Opted out of reminders"}
          </div>
        </div>
        <button type="button" class={human ? "secondary" : "primary"} disabled={busy !== undefined} onClick={toggle}>
          {busy === "take" ? "Taking over…" : busy === "back" ? "Handing back…" : human ? "Hand back to the bot" : "Take over"}
        </button>
      </header>
      {problem && <ErrorBox message={problem} onRetry={toggle} />}
      {messages.loading && !messages.data && <Loading what="messages" />}
      {messages.error && <ErrorBox message={messages.error} onRetry={() => void messages.refresh()} />}
      {messages.data && messages.data.length === 0 && <Empty title="No messages yet">Messages with {c.customer_name} appear here.</Empty>}
      {messages.data && messages.data.length > 0 && (
        <ol class="bubbles" ref={scroller} aria-label="Messages" tabIndex={0}>
          {messages.data.map((m) => (
            <Bubble key={m.id} message={m} />
          ))}
        </ol>
      )}
      {human ? (
        <ReplyBox key={`${c.customer_id}-${c.window_open}`} chat={c} onSent={afterSend} />
      ) : (
        <p class="bot-note">
          The bot is handling this chat. Press <strong>Take over</strong> to write to {c.customer_name} yourself; the bot stays quiet until
          you hand the chat back.
        </p>
      )}
    </div>
  );
}

function byRecent(a: ConversationSummary, b: ConversationSummary): number {
  const ta = a.last_at ? Date.parse(a.last_at) : -Infinity;
  const tb = b.last_at ? Date.parse(b.last_at) : -Infinity;
  return tb - ta;
}

/** The live inbox: every customer chat, who is answering it, and the chat itself. */
export function Conversations(props: { onNavigate?: (id: ScreenId) => void }) {
  const list = useLive(api.listConversations, "inbox", 5000);
  const [selected, setSelected] = useState<number>();
  const [query, setQuery] = useState("");
  const rows = useMemo(() => [...(list.data ?? [])].sort(byRecent), [list.data]);
  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    return q === "" ? rows : rows.filter((c) => c.customer_name.toLowerCase().includes(q) || c.phone.includes(q));
  }, [rows, query]);
  const current = rows.find((c) => c.customer_id === selected);

  /** Up and down arrows move through the list, like a mail inbox. */
  const onListKey = (e: KeyboardEvent) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const buttons = Array.from((e.currentTarget as HTMLElement).querySelectorAll<HTMLButtonElement>("button[data-customer-id]"));
    const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
    const next = buttons[Math.max(0, Math.min(buttons.length - 1, at + (e.key === "ArrowDown" ? 1 : -1)))];
    if (next) {
      e.preventDefault();
      next.focus();
      setSelected(Number(next.dataset.customerId));
    }
  };

  return (
    <section aria-labelledby="screen-title" class="conversations">
      <h1 id="screen-title">Conversations</h1>
      {list.loading && !list.data && <Loading what="conversations" />}
      {list.error && <ErrorBox message={list.error} onRetry={() => void list.refresh()} />}
      {list.data && rows.length === 0 && (
        <Empty title="No conversations yet">
          When customers write to your WhatsApp number or answer a reminder, their chats appear here and update live. Want to see how
          it works? Open the Simulator and chat as one of your customers.{" "}
          {props.onNavigate && (
            <button type="button" class="link" onClick={() => props.onNavigate?.("simulator")}>
              Open the Simulator
            </button>
          )}
        </Empty>
      )}
      {rows.length > 0 && (
        <div class="inbox">
          <div class="inbox-list">
            <input
              type="search"
              aria-label="Search chats"
              placeholder="Search name or number"
              value={query}
              onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
            />
            {shown.length === 0 && <p class="sub">No chats match “{query}”.</p>}
            <ul aria-label="Chats" onKeyDown={onListKey}>
              {shown.map((c) => (
                <li key={c.customer_id}>
                  <button
                    type="button"
                    class={c.customer_id === selected ? "convo active" : "convo"}
                    data-customer-id={c.customer_id}
                    aria-current={c.customer_id === selected ? "true" : undefined}
                    onClick={() => setSelected(c.customer_id)}
                  >
                    <span class="convo-top">
                      <strong class="convo-name">{c.customer_name}</strong>
                      {c.last_at && <time class="sub" dateTime={c.last_at}>{when(c.last_at)}</time>}
                    </span>
                    <span class="sub">{c.phone}</span>
                    <span class="convo-last">{c.last_message ?? <em class="sub">No messages yet</em>}</span>
                    {(c.handled_by === "human" || c.opted_out) && (
                      <span class="badges">
                        {c.handled_by === "human" && (
                          <span class="badge badge-person" title="A person is answering; the bot is paused">
                            Person
                          </span>
                        )}
                        {c.opted_out && (
                          <span class="badge badge-opted-out" title="Asked to stop reminders">
                            Opted out
                          </span>
                        )}
                      </span>
                    )}
                  </button>
                </li>
              ))}
            </ul>
          </div>
          {current ? (
            <Chat key={current.customer_id} chat={current} onChanged={list.refresh} />
          ) : (
            <div class="chat chat-none">
              <Empty title="Pick a chat">Choose a customer on the left to read the conversation and, if needed, take over from the bot.</Empty>
            </div>
          )}
        </div>
      )}
    </section>
  );
}
