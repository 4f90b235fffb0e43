import { api, type AppInfo } from "../api";
import { Empty, ErrorBox, Loading } from "../components";
import { kes } from "../format";
import { useLoad } from "../load";

/** Today's picture: what is owed and what is collected. Grows with the payments and reports issues. */
export function Dashboard(props: { info: AppInfo | undefined }) {
  const invoices = useLoad(api.listInvoices);
  const rows = invoices.data ?? [];
  const outstanding = rows.filter((i) => i.status === "open" || i.status === "partially_paid");
  const owed = outstanding.reduce((sum, i) => sum + i.balance, 0);
  const collected = rows.reduce((sum, i) => sum + (i.amount - i.balance), 0);
  return (
    <section aria-labelledby="screen-title">
      <h1 id="screen-title">Dashboard</h1>
      {props.info?.daraja_environment === "simulator" && (
        <p class="hint">
          You are in simulator mode: try the whole payment flow with pretend money. Save your M-Pesa and WhatsApp details in
          Settings to go live.
        </p>
      )}
      {invoices.loading && <Loading what="your numbers" />}
      {invoices.error && <ErrorBox message={invoices.error} onRetry={invoices.reload} />}
      {!invoices.loading && !invoices.error && rows.length === 0 && (
        <Empty title="No invoices yet">Import your invoices to start collecting.</Empty>
      )}
      {rows.length > 0 && (
        <div class="cards">
          <div class="card">
            <div class="label">Still owed</div>
            <div class="figure" data-testid="owed">{kes(owed)}</div>
            <div class="sub">{outstanding.length} open invoices</div>
          </div>
          <div class="card">
            <div class="label">Collected</div>
            <div class="figure" data-testid="collected">{kes(collected)}</div>
            <div class="sub">on {rows.length} invoices</div>
          </div>
        </div>
      )}
    </section>
  );
}
