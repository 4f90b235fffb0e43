import { useEffect, useRef, useState } from "preact/hooks";
import { api, errorMessage, type SimAnswer, type SimCustomer, type SimMessage, type SimPrompt } from "../api";
import type { ScreenId } from "../app";
import { Empty, ErrorBox, Loading, TrySamples } from "../components";
import { kes, when } from "../format";
import { useLive } from "../load";

export const quickStarts = ["Hi", "Nataka kulipa", "I want to pay", "How much do I owe?", "Nimeshalipa"];

const answers: { answer: SimAnswer; label: string }[] = [
  { answer: "pin", label: "Enter PIN" },
  { answer: "wrong_pin", label: "Wrong PIN" },
  { answer: "insufficient", label: "Insufficient balance" },
  { answer: "cancel", label: "Cancel" },
  { answer: "no_answer", label: "Ignore (no answer)" },
];

/** "14:05" in Nairobi time, as a phone shows it. */
function clock(at: string): string {
  const t = new Date(at);
  if (Number.isNaN(t.getTime())) return "";
  return new Intl.DateTimeFormat("en-GB", { timeZone: "Africa/Nairobi", hour: "2-digit", minute: "2-digit", hour12: false }).format(t);
}

function owes(c: SimCustomer): string {
  if (c.balance <= 0) return "owes nothing";
  return `owes ${kes(c.balance)}${c.open_invoices > 1 ? ` on ${c.open_invoices} invoices` : ""}`;
}

function promptFor(prompts: SimPrompt[], c: SimCustomer): SimPrompt | undefined {
  return prompts.find((p) => p.customer_id === c.customer_id || (p.customer_id === null && p.phone === c.phone));
}

/** The simulated M-Pesa STK prompt, laid over the phone like the real one. */
function StkPrompt(props: { prompt: SimPrompt; onAnswered: (id: string) => void }) {
  const p = props.prompt;
  const [busy, setBusy] = useState<SimAnswer>();
  const [problem, setProblem] = useState<string>();
  const first = useRef<HTMLButtonElement>(null);

  useEffect(() => first.current?.focus(), [p.checkout_request_id]);

  const answer = async (a: SimAnswer) => {
    setBusy(a);
    setProblem(undefined);
    try {
      await api.simAnswer(p.checkout_request_id, a);
      props.onAnswered(p.checkout_request_id);
    } catch (e) {
      setProblem(errorMessage(e));
      setBusy(undefined);
    }
  };

  return (
    <div class="stk-backdrop">
      <div class="stk" data-testid="stk-prompt" role="alertdialog" aria-modal="true" aria-labelledby="stk-text">
        <div class="stk-brand">M-PESA</div>
        <p id="stk-text">
          Do you want to pay {kes(p.amount)} to {p.business_name}? Account no. {p.account_reference}. Enter M-PESA PIN
        </p>
        <div class="stk-pin" aria-hidden="true">
          ••••
        </div>
        <p class="stk-note">Pretend PIN: nothing is typed or stored. Choose what the customer does:</p>
        <div class="stk-actions">
          {answers.map((a, i) => (
            <button
              type="button"
              key={a.answer}
              ref={i === 0 ? first : undefined}
              data-answer={a.answer}
              class={a.answer === "pin" ? "primary" : "secondary"}
              disabled={busy !== undefined}
              onClick={() => void answer(a.answer)}
            >
              {busy === a.answer ? "Sending…" : a.label}
            </button>
          ))}
        </div>
        {problem && (
          <div class="phone-problem" role="alert">
            {problem}
          </div>
        )}
      </div>
    </div>
  );
}

/** A WhatsApp list message opened: the rows to choose from. */
function ListSheet(props: { message: SimMessage; disabled: boolean; onPick: (id: string, title: string) => void; onClose: () => void }) {
  const list = props.message.list!;
  const first = useRef<HTMLButtonElement>(null);
  useEffect(() => first.current?.focus(), []);
  return (
    <div
      class="list-sheet"
      role="dialog"
      aria-modal="true"
      aria-label={list.button}
      onKeyDown={(e) => {
        if (e.key === "Escape") props.onClose();
      }}
    >
      <div class="list-head">
        <strong>{list.button}</strong>
        <button type="button" class="link" onClick={props.onClose}>
          Close
        </button>
      </div>
      <ul>
        {list.rows.map((r, i) => (
          <li key={r.id}>
            <button
              type="button"
              class="list-row"
              ref={i === 0 ? first : undefined}
              disabled={props.disabled}
              onClick={() => props.onPick(r.id, r.title)}
            >
              <span>{r.title}</span>
              {r.description && <span class="sub">{r.description}</span>}
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** The customer's phone: WhatsApp with the business, plus the M-Pesa prompt when one arrives. */
function Phone(props: { customer: SimCustomer; prompt: SimPrompt | undefined; businessName: string; onChanged: () => Promise<void> }) {
  const c = props.customer;
  const messages = useLive(() => api.simMessages(c.customer_id), c.customer_id, 1000);
  const [text, setText] = useState("");
  const [sending, setSending] = useState(false);
  const [problem, setProblem] = useState<string>();
  const [openList, setOpenList] = useState<number>();
  const [waitingSince, setWaitingSince] = useState<number>();
  const [answered, setAnswered] = useState<string[]>([]);
  const scroller = useRef<HTMLOListElement>(null);
  const input = useRef<HTMLInputElement>(null);

  const list = messages.data ?? [];
  const lastFromBusiness = list.length > 0 && !list[list.length - 1]!.from_customer;
  const typing = waitingSince !== undefined && !lastFromBusiness;
  const prompt = props.prompt && !answered.includes(props.prompt.checkout_request_id) ? props.prompt : undefined;

  // The bot answers within a second or two; stop showing "typing…" if it stays quiet (e.g. a person took over).
  useEffect(() => {
    if (waitingSince === undefined) return;
    const timer = setTimeout(() => setWaitingSince(undefined), 10_000);
    return () => clearTimeout(timer);
  }, [waitingSince]);

  useEffect(() => {
    const el = scroller.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [messages.data, typing]);

  /** Sends text or a tap as the customer, then refreshes the phone. */
  const act = async (what: () => Promise<void>): Promise<boolean> => {
    if (sending) return false;
    setSending(true);
    setProblem(undefined);
    try {
      await what();
      setWaitingSince(Date.now());
      await Promise.all([messages.refresh(), props.onChanged()]);
      return true;
    } catch (e) {
      setProblem(`Not sent: ${errorMessage(e)}`);
      return false;
    } finally {
      setSending(false);
    }
  };

  const sendText = async (body: string) => {
    if (body.trim() === "") {
      setProblem("Type a message first, or tap one of the suggestions.");
      input.current?.focus();
      return;
    }
    if (await act(() => api.simSendText(c.customer_id, body.trim()))) setText("");
    input.current?.focus();
  };

  const tap = (id: string, title: string) => {
    setOpenList(undefined);
    void act(() => api.simTap(c.customer_id, id, title));
  };

  const listMessage = openList !== undefined ? list[openList] : undefined;

  return (
    <div class="phone" data-testid="sim-phone" role="region" aria-label={`${c.name}'s phone`}>
      <header class="phone-head">
        <span class="avatar" aria-hidden="true">
          {props.businessName.slice(0, 1).toUpperCase()}
        </span>
        <div>
          <div class="phone-title">{props.businessName}</div>
          <div class="phone-sub">WhatsApp · simulated · on {c.name}'s phone</div>
        </div>
      </header>
      <ol class="phone-messages" ref={scroller} aria-label="Messages" aria-live="polite" tabIndex={0}>
        {messages.loading && !messages.data && (
          <li>
            <Loading what="chat" />
          </li>
        )}
        {messages.data && list.length === 0 && (
          <li class="phone-empty">No messages yet. Say hi, or tap a suggestion below.</li>
        )}
        {list.map((m, i) => (
          <li key={`${m.at}-${i}`} class={`bubble ${m.from_customer ? "from-customer" : "from-business"}`}>
            <div class="body">{m.text}</div>
            <time class="meta" dateTime={m.at} title={when(m.at)}>
              {clock(m.at)}
            </time>
            {m.buttons.length > 0 && (
              <div class="reply-buttons" role="group" aria-label="Reply options">
                {m.buttons.map((b) => (
                  <button type="button" key={b.id} class="reply-button" disabled={sending} onClick={() => tap(b.id, b.title)}>
                    {b.title}
                  </button>
                ))}
              </div>
            )}
            {m.list && (
              <div class="reply-buttons">
                <button type="button" class="list-button" disabled={sending} aria-haspopup="dialog" onClick={() => setOpenList(i)}>
                  ☰ {m.list.button}
                </button>
              </div>
            )}
          </li>
        ))}
        {typing && (
          <li class="typing" role="status">
            {props.businessName} is typing…
          </li>
        )}
      </ol>
      {messages.error && (
        <div class="phone-problem" role="alert">
          Could not load the chat: {messages.error}{" "}
          <button type="button" class="link" onClick={() => void messages.refresh()}>
            Try again
          </button>
        </div>
      )}
      {problem && (
        <div class="phone-problem" role="alert">
          {problem}
        </div>
      )}
      <div class="quick" role="group" aria-label="Suggestions">
        {quickStarts.map((q) => (
          <button type="button" key={q} class="quick-chip" disabled={sending} onClick={() => void sendText(q)}>
            {q}
          </button>
        ))}
      </div>
      <form
        class="phone-input"
        onSubmit={(e) => {
          e.preventDefault();
          void sendText(text);
        }}
      >
        <input
          ref={input}
          type="text"
          aria-label="Message"
          placeholder="Message"
          autoComplete="off"
          value={text}
          onInput={(e) => setText((e.target as HTMLInputElement).value)}
        />
        <button type="submit" aria-label="Send" disabled={sending} title="Send">
          {sending ? <span class="spinner" /> : "➤"}
        </button>
      </form>
      {listMessage?.list && (
        <ListSheet message={listMessage} disabled={sending} onPick={tap} onClose={() => setOpenList(undefined)} />
      )}
      {prompt && (
        <StkPrompt
          key={prompt.checkout_request_id}
          prompt={prompt}
          onAnswered={(id) => {
            setAnswered((a) => [...a, id]);
            void props.onChanged();
            input.current?.focus();
          }}
        />
      )}
    </div>
  );
}

/** Chat as a customer and answer the M-Pesa prompt: the whole flow with pretend money. */
export function Simulator(props: { merchantName?: string | null; onNavigate?: (id: ScreenId) => void }) {
  const sim = useLive(api.simState, "sim", 1000);
  const [picked, setPicked] = useState<number>();
  const data = sim.data;
  const customers = data?.customers ?? [];
  const customer = customers.find((c) => c.customer_id === picked) ?? customers[0];
  const prompts = data?.prompts ?? [];
  const prompt = customer ? promptFor(prompts, customer) : undefined;
  const elsewhere = customers.filter((c) => c !== customer && promptFor(prompts, c));
  const businessName = props.merchantName || prompt?.business_name || prompts[0]?.business_name || "Your business";

  return (
    <section aria-labelledby="screen-title" class="simulator">
      <h1 id="screen-title">Simulator</h1>
      {sim.loading && !data && <Loading what="the simulator" />}
      {sim.error && <ErrorBox message={sim.error} onRetry={() => void sim.refresh()} />}
      {data && !data.enabled && (
        <Empty title="The simulator is off">
          Malipo is using your real M-Pesa and WhatsApp details, so pretend customers and pretend payments are switched off: nothing
          here could touch real money or real chats. To practise again, choose the simulator for M-Pesa in Settings.
        </Empty>
      )}
      {data && data.enabled && customers.length === 0 && (
        <Empty title="No customers to chat as yet">
          Import your invoices first (Invoices screen). Every customer with an invoice then appears here, and you can chat as them and
          pay with pretend money.{" "}
          {props.onNavigate && (
            <button type="button" class="link" onClick={() => props.onNavigate?.("invoices")}>
              Go to Invoices
            </button>
          )}
          <TrySamples onLoaded={() => void sim.refresh()} />
        </Empty>
      )}
      {data && data.enabled && customer && (
        <div class="sim-layout">
          <div class="sim-side">
            <p class="hint">Chat as your customer: try 'Nataka kulipa'. You'll see the M-Pesa prompt on this phone.</p>
            <label class="field">
              <span class="label">Chat as</span>
              <select
                aria-label="Customer"
                value={String(customer.customer_id)}
                onChange={(e) => setPicked(Number((e.target as HTMLSelectElement).value))}
              >
                {customers.map((c) => (
                  <option key={c.customer_id} value={String(c.customer_id)}>
                    {c.name} · {c.phone} · {owes(c)}
                  </option>
                ))}
              </select>
            </label>
            <div class="card sim-customer">
              <div class="label">{customer.name}</div>
              <div class="sub">{customer.phone}</div>
              <div class="figure">{kes(customer.balance)}</div>
              <div class="sub">
                owed on {customer.open_invoices} open invoice{customer.open_invoices === 1 ? "" : "s"}
              </div>
            </div>
            {elsewhere.length > 0 && (
              <div class="hint" role="status">
                An M-Pesa prompt is waiting on another phone:{" "}
                {elsewhere.map((c, i) => (
                  <span key={c.customer_id}>
                    {i > 0 && ", "}
                    <button type="button" class="link" onClick={() => setPicked(c.customer_id)}>
                      {c.name}
                    </button>
                  </span>
                ))}
              </div>
            )}
            <ol class="sim-steps">
              <li>Tap a suggestion or type as the customer would.</li>
              <li>Say yes when the business confirms the amount.</li>
              <li>Answer the M-Pesa prompt: enter PIN to pay, or try what happens when it fails.</li>
              <li>Watch the invoice turn paid under Invoices and Payments.</li>
            </ol>
            <p class="sub">No real money moves and no real WhatsApp messages are sent.</p>
          </div>
          <Phone key={customer.customer_id} customer={customer} prompt={prompt} businessName={businessName} onChanged={sim.refresh} />
        </div>
      )}
    </section>
  );
}
