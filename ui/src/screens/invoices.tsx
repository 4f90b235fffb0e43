import { useMemo, useState } from "preact/hooks";
import { api, errorMessage, type Invoice } from "../api";
import { Empty, ErrorBox, Loading } from "../components";
import { day, kes, statusLabel } from "../format";
import { useLoad, useReloadOnPayments } from "../load";

const filters = ["all", "open", "partially_paid", "paid", "disputed"] as const;
type Filter = (typeof filters)[number];

export function filterInvoices(rows: Invoice[], query: string, filter: Filter): Invoice[] {
  const q = query.trim().toLowerCase();
  return rows.filter(
    (i) =>
      (filter === "all" || i.status === filter) &&
      (q === "" || i.number.toLowerCase().includes(q) || i.customer_name.toLowerCase().includes(q)),
  );
}

/** "Request payment": sends the customer an M-Pesa prompt for the balance. */
function RequestPayment(props: { invoice: Invoice }) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string>();
  const ask = async () => {
    setBusy(true);
    setMessage(undefined);
    try {
      const attempt = await api.requestPayment(props.invoice.id);
      setMessage(`Prompt sent to ${attempt.phone}`);
    } catch (e) {
      setMessage(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div>
      <button type="button" class="small" disabled={busy} onClick={ask} aria-label={`Request payment for ${props.invoice.number}`}>
        {busy ? "Sending…" : "Request payment"}
      </button>
      {message && (
        <div class="sub" role="status">
          {message}
        </div>
      )}
    </div>
  );
}

export function Invoices() {
  const invoices = useLoad(api.listInvoices);
  useReloadOnPayments(invoices.reload);
  const [query, setQuery] = useState("");
  const [filter, setFilter] = useState<Filter>("all");
  const shown = useMemo(() => filterInvoices(invoices.data ?? [], query, filter), [invoices.data, query, filter]);
  return (
    <section aria-labelledby="screen-title">
      <h1 id="screen-title">Invoices</h1>
      <div class="toolbar">
        <input
          type="search"
          placeholder="Search number or customer"
          aria-label="Search invoices"
          value={query}
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
        />
        <div role="group" aria-label="Filter by status" class="chips">
          {filters.map((f) => (
            <button type="button" key={f} class={f === filter ? "chip active" : "chip"} onClick={() => setFilter(f)}>
              {f === "all" ? "All" : statusLabel(f)}
            </button>
          ))}
        </div>
      </div>
      {invoices.loading && <Loading what="invoices" />}
      {invoices.error && <ErrorBox message={invoices.error} onRetry={invoices.reload} />}
      {!invoices.loading && !invoices.error && (invoices.data ?? []).length === 0 && (
        <Empty title="No invoices yet">Import a CSV or Excel file with `malipo import`, or add one by hand.</Empty>
      )}
      {(invoices.data ?? []).length > 0 && shown.length === 0 && <Empty title="No invoices match" />}
      {shown.length > 0 && (
        <table class="table" aria-label="Invoices">
          <thead>
            <tr>
              <th>Number</th>
              <th>Customer</th>
              <th class="num">Amount</th>
              <th class="num">Balance</th>
              <th>Due</th>
              <th>Status</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {shown.map((i) => (
              <tr key={i.id} data-invoice={i.number}>
                <td>{i.number}</td>
                <td>
                  {i.customer_name}
                  {i.customer_phone && <div class="sub">{i.customer_phone}</div>}
                </td>
                <td class="num">{kes(i.amount)}</td>
                <td class="num">{kes(i.balance)}</td>
                <td>{day(i.due_date)}</td>
                <td>
                  <span class={`status status-${i.status}`}>{statusLabel(i.status)}</span>
                </td>
                <td>{(i.status === "open" || i.status === "partially_paid") && i.customer_phone && <RequestPayment invoice={i} />}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
