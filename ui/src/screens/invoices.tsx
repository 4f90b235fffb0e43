import { useMemo, useState } from "preact/hooks";
import { api, errorMessage, type Invoice } from "../api";
import { Empty, ErrorBox, Loading } from "../components";
import { day, kes, statusLabel } from "../format";
import { useLoad, useReloadOnPayments } from "../load";
import { ImportWizard } from "./import-wizard";
import { InvoiceDetail } from "./invoice-detail";

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

const sorts = {
  due: { label: "Due date, soonest first", compare: (a: Invoice, b: Invoice) => a.due_date.localeCompare(b.due_date) || a.number.localeCompare(b.number) },
  balance: { label: "Balance, largest first", compare: (a: Invoice, b: Invoice) => b.balance - a.balance || a.number.localeCompare(b.number) },
  customer: { label: "Customer A–Z", compare: (a: Invoice, b: Invoice) => a.customer_name.localeCompare(b.customer_name) || a.number.localeCompare(b.number) },
  number: { label: "Invoice number", compare: (a: Invoice, b: Invoice) => a.number.localeCompare(b.number, undefined, { numeric: true }) },
};
export type Sort = keyof typeof sorts;

export function sortInvoices(rows: Invoice[], sort: Sort): Invoice[] {
  return [...rows].sort(sorts[sort].compare);
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
  const [sort, setSort] = useState<Sort>("due");
  const [importing, setImporting] = useState(false);
  const [openId, setOpenId] = useState<number>();
  const shown = useMemo(() => sortInvoices(filterInvoices(invoices.data ?? [], query, filter), sort), [invoices.data, query, filter, sort]);
  const open = invoices.data?.find((i) => i.id === openId);
  return (
    <section aria-labelledby="screen-title">
      <div class="screen-head">
        <h1 id="screen-title">Invoices</h1>
        {!importing && (
          <button type="button" class="primary" onClick={() => setImporting(true)}>
            Import invoices
          </button>
        )}
      </div>
      {importing && (
        <ImportWizard
          onClose={(imported) => {
            setImporting(false);
            if (imported) invoices.reload();
          }}
        />
      )}
      {open && <InvoiceDetail invoice={open} onClose={() => setOpenId(undefined)} onChanged={invoices.reload} />}
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
        <label class="sort">
          Sort
          <select value={sort} onChange={(e) => setSort(e.currentTarget.value as Sort)} aria-label="Sort invoices">
            {Object.entries(sorts).map(([id, s]) => (
              <option key={id} value={id}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {invoices.loading && <Loading what="invoices" />}
      {invoices.error && <ErrorBox message={invoices.error} onRetry={invoices.reload} />}
      {!invoices.loading && !invoices.error && (invoices.data ?? []).length === 0 && (
        <Empty title="No invoices yet">Choose "Import invoices" to bring in a CSV or Excel file from your accounting tool.</Empty>
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
                <td>
                  <button type="button" class="link" onClick={() => setOpenId(i.id)} aria-label={`Open ${i.number}`}>
                    {i.number}
                  </button>
                </td>
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
