import { useState } from "preact/hooks";
import { api, type AttentionItem, type Attempt, type Invoice, type PaymentEvent } from "../api";
import { Empty, ErrorBox, Loading } from "../components";
import { attemptLabel, kes, sourceLabel, when } from "../format";
import { useAction, useLoad, useReloadOnPayments } from "../load";

function Timeline(props: { attempt: Attempt }) {
  const events = useLoad<PaymentEvent[]>(() => api.paymentTimeline(props.attempt.id));
  if (events.loading) return <Loading what="timeline" />;
  if (events.error) return <ErrorBox message={events.error} onRetry={events.reload} />;
  return (
    <ol class="timeline" aria-label={`Timeline of attempt ${props.attempt.id}`}>
      {(events.data ?? []).map((e, i) => (
        <li key={i}>
          <span class="sub">{when(e.at)}</span> <strong>{attemptLabel(e.to_state)}</strong> <span class="sub">({e.cause})</span>
          <div>{e.detail}</div>
        </li>
      ))}
    </ol>
  );
}

/** A paybill/till payment no invoice matched: the merchant picks the invoice it pays. */
function MatchRow(props: { item: AttentionItem; invoices: Invoice[]; onMatched: () => void }) {
  const [invoiceId, setInvoiceId] = useState<number>();
  const { busy, error, run } = useAction();
  const match = () => invoiceId !== undefined && run(async () => (await api.matchPayment(props.item.id, invoiceId), props.onMatched()));
  return (
    <li class="attention attention-unmatched_payment">
      <div>
        <strong>{props.item.detail}</strong>
        <div class="sub">{when(props.item.at)}</div>
        {error && (
          <div class="field-error" role="alert">
            {error}
          </div>
        )}
      </div>
      <div class="actions">
        <select aria-label="Invoice this payment is for" value={invoiceId ?? ""} onChange={(e) => setInvoiceId(Number(e.currentTarget.value) || undefined)}>
          <option value="">Choose the invoice…</option>
          {props.invoices.map((i) => (
            <option key={i.id} value={i.id}>
              {i.number} · {i.customer_name} · {kes(i.balance)} owed
            </option>
          ))}
        </select>
        <button type="button" class="small" disabled={busy || invoiceId === undefined} onClick={() => void match()}>
          Match
        </button>
      </div>
    </li>
  );
}

/** Payments to paybill or till that Malipo could not tie to an invoice (a wrong account number, say). */
function ToMatch() {
  const queue = useLoad(async () => {
    const [items, invoices] = await Promise.all([api.attention(), api.listInvoices()]);
    const collectable = invoices.filter((i) => i.status === "open" || i.status === "partially_paid");
    return { items: items.filter((i) => i.kind === "unmatched_payment"), invoices: collectable };
  });
  useReloadOnPayments(queue.reload);
  if (queue.error) return <ErrorBox message={queue.error} onRetry={queue.reload} />;
  if (!queue.data || queue.data.items.length === 0) return null;
  return (
    <>
      <h2>Payments to match</h2>
      <p class="sub">These came to your paybill or till without an invoice number Malipo knows. Choose the invoice each one pays.</p>
      <ul class="attention-list" aria-label="Payments to match">
        {queue.data.items.map((item) => (
          <MatchRow key={item.id} item={item} invoices={queue.data!.invoices} onMatched={queue.reload} />
        ))}
      </ul>
    </>
  );
}

export function Payments() {
  const payments = useLoad(api.listPayments);
  useReloadOnPayments(payments.reload);
  const [open, setOpen] = useState<number>();
  const data = payments.data;
  return (
    <section aria-labelledby="screen-title">
      <h1 id="screen-title">Payments</h1>
      {payments.loading && !data && <Loading what="payments" />}
      {payments.error && <ErrorBox message={payments.error} onRetry={payments.reload} />}
      <ToMatch />
      {data && (
        <>
          <h2>Money received</h2>
          {data.ledger.length === 0 ? (
            <Empty title="No payments yet">Payments appear here the moment M-Pesa confirms them.</Empty>
          ) : (
            <table class="table" aria-label="Ledger">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Receipt</th>
                  <th>Invoice</th>
                  <th>Customer</th>
                  <th>How</th>
                  <th class="num">Amount</th>
                </tr>
              </thead>
              <tbody>
                {data.ledger.map((l) => (
                  <tr key={l.id}>
                    <td>{when(l.paid_at)}</td>
                    <td>{l.receipt ?? <span class="sub">pending</span>}</td>
                    <td>{l.invoice_number ?? "—"}</td>
                    <td>{l.customer_name ?? "—"}</td>
                    <td>{sourceLabel(l.source)}</td>
                    <td class="num">
                      {kes(l.amount)}
                      {l.credit > 0 && <div class="sub">{kes(l.credit)} credit</div>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h2>M-Pesa prompts</h2>
          {data.attempts.length === 0 ? (
            <Empty title="No M-Pesa prompts yet">Use "Request payment" on an invoice, or let customers pay in the chat.</Empty>
          ) : (
            <table class="table" aria-label="Attempts">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Invoice</th>
                  <th>Phone</th>
                  <th class="num">Amount</th>
                  <th>Status</th>
                  <th>Details</th>
                </tr>
              </thead>
              <tbody>
                {data.attempts.map((a) => (
                  <>
                    <tr key={a.id} data-attempt={a.id}>
                      <td>{when(a.created_at)}</td>
                      <td>{a.invoice_number}</td>
                      <td>{a.phone}</td>
                      <td class="num">{kes(a.amount)}</td>
                      <td>
                        <span class={`status attempt-${a.state}`}>{attemptLabel(a.state)}</span>
                        {a.result_code !== null && a.result_code !== 0 && <div class="sub">code {a.result_code}</div>}
                      </td>
                      <td>
                        <button type="button" class="link" onClick={() => setOpen(open === a.id ? undefined : a.id)} aria-expanded={open === a.id}>
                          {open === a.id ? "Hide" : "Timeline"}
                        </button>
                      </td>
                    </tr>
                    {open === a.id && (
                      <tr key={`t${a.id}`}>
                        <td colSpan={6}>
                          <Timeline attempt={a} />
                        </td>
                      </tr>
                    )}
                  </>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
