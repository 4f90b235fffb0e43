import { useState } from "preact/hooks";
import { api, errorMessage, type Invoice } from "../api";
import { ErrorBox, Loading } from "../components";
import { day, kes, statusLabel, when } from "../format";
import { useLive } from "../load";


/** Cash at the counter or a bank transfer. The balance is the default amount. */
function ManualPayment(props: { invoice: Invoice; onSaved: () => void }) {
  const [amount, setAmount] = useState(String(props.invoice.balance));
  const [method, setMethod] = useState<"cash" | "bank">("cash");
  const [reference, setReference] = useState("");
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  const save = async (e: Event) => {
    e.preventDefault();
    const shillings = Number(amount.replace(/[,\s]/g, ""));
    if (!Number.isInteger(shillings) || shillings <= 0) {
      setMessage({ ok: false, text: "Enter the amount in whole shillings, e.g. 2500." });
      return;
    }
    setBusy(true);
    setMessage(undefined);
    try {
      await api.recordManualPayment(props.invoice.id, shillings, method, reference);
      setMessage({ ok: true, text: `${kes(shillings)} recorded.` });
      props.onSaved();
    } catch (err) {
      setMessage({ ok: false, text: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="manual-payment" onSubmit={save} aria-label="Record a cash or bank payment">
      <h3>Record a cash or bank payment</h3>
      <label>
        Amount (KES)
        <input inputMode="numeric" value={amount} onInput={(e) => setAmount(e.currentTarget.value)} />
      </label>
      <label>
        Paid by
        <select value={method} onChange={(e) => setMethod(e.currentTarget.value as "cash" | "bank")}>
          <option value="cash">Cash</option>
          <option value="bank">Bank transfer</option>
        </select>
      </label>
      <label>
        Reference {method === "bank" ? "(required)" : "(optional)"}
        <input value={reference} onInput={(e) => setReference(e.currentTarget.value)} placeholder={method === "bank" ? "Transfer or slip number" : "Receipt book number"} />
      </label>
      <button type="submit" class="primary" disabled={busy}>
        {busy ? "Saving…" : "Record payment"}
      </button>
      {message && (
        <div class={message.ok ? "sub" : "field-error"} role={message.ok ? "status" : "alert"}>
          {message.text}
        </div>
      )}
    </form>
  );
}

/** One invoice: its figures, everything that happened to it, and recording a payment made outside M-Pesa. */
export function InvoiceDetail(props: { invoice: Invoice; onClose: () => void; onChanged: () => void }) {
  const i = props.invoice;
  const timeline = useLive(() => api.invoiceTimeline(i.id), i.id, 15000);
  const collectable = i.status === "open" || i.status === "partially_paid";
  return (
    <section class="detail card" aria-labelledby="detail-title">
      <div class="wizard-head">
        <h2 id="detail-title">
          {i.number} · {i.customer_name}
        </h2>
        <button type="button" class="secondary" onClick={props.onClose}>
          Close
        </button>
      </div>
      <p>
        {kes(i.amount)}, due {day(i.due_date)} · balance <strong data-testid="detail-balance">{kes(i.balance)}</strong> ·{" "}
        <span class={`status status-${i.status}`}>{statusLabel(i.status)}</span>
        {i.customer_phone && <span class="sub"> · {i.customer_phone}</span>}
      </p>
      <div class="detail-grid">
        <div>
          <h3>What happened</h3>
          {timeline.loading && !timeline.data && <Loading what="the history" />}
          {timeline.error && <ErrorBox message={timeline.error} onRetry={() => void timeline.refresh()} />}
          {timeline.data?.length === 0 && <p class="sub">Nothing yet: no reminders, messages or payments.</p>}
          {timeline.data && timeline.data.length > 0 && (
            <ol class="history" aria-label="Invoice history">
              {timeline.data.map((e, n) => (
                <li key={n} class={`history-${e.kind}`}>
                  <span aria-hidden="true" class="history-dot" />
                  <div>
                    <strong>{e.title}</strong> <span class="sub">{when(e.at)}</span>
                    {e.detail && <div class="history-detail">{e.detail}</div>}
                  </div>
                </li>
              ))}
            </ol>
          )}
        </div>
        {collectable && <ManualPayment invoice={i} onSaved={props.onChanged} />}
      </div>
    </section>
  );
}
