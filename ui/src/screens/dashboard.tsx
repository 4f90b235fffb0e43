import { api, type AppInfo, type AttentionItem, type DashboardView } from "../api";
import type { ScreenId } from "../app";
import { ChartView, chartColors } from "../chart";
import { Empty, ErrorBox, Loading, TrySamples } from "../components";
import { kes, when } from "../format";
import { useAction, useLive } from "../load";

const monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "2026-12" → "Dec 2026". */
export function monthLabel(month: string): string {
  const [y, m] = month.split("-").map(Number);
  return m ? `${monthNames[m - 1]} ${y}` : month;
}

function RateChart(props: { months: DashboardView["months"] }) {
  const labels = props.months.map((m) => monthLabel(m.month));
  const summary = props.months
    .map((m) => `${monthLabel(m.month)}: ${m.collection_rate === null ? "nothing due" : `${m.collection_rate}% collected`}`)
    .join("; ");
  return (
    <ChartView
      summary={`Collection rate by month. ${summary}`}
      config={{
        type: "bar",
        data: {
          labels,
          datasets: [{ label: "Collected of what fell due (%)", data: props.months.map((m) => m.collection_rate), backgroundColor: chartColors.green }],
        },
        options: { maintainAspectRatio: false, scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } }, plugins: { legend: { display: false } } },
      }}
    />
  );
}

const funnelSteps: [keyof DashboardView["funnel"], string][] = [
  ["reminded", "Reminded"],
  ["replied", "Replied"],
  ["confirmed", "Confirmed"],
  ["pushed", "Got the prompt"],
  ["paid", "Paid"],
];

function FunnelChart(props: { funnel: DashboardView["funnel"] }) {
  const summary = funnelSteps.map(([k, label]) => `${label} ${props.funnel[k]}`).join(", ");
  return (
    <ChartView
      height={180}
      summary={`Customers this month: ${summary}`}
      config={{
        type: "bar",
        data: {
          labels: funnelSteps.map(([, label]) => label),
          datasets: [{ label: "Customers", data: funnelSteps.map(([k]) => props.funnel[k]), backgroundColor: [chartColors.muted, chartColors.muted, chartColors.gold, chartColors.gold, chartColors.green] }],
        },
        options: { indexAxis: "y", maintainAspectRatio: false, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { display: false } } },
      }}
    />
  );
}

/** One thing waiting on the merchant, with the action that settles it. */
function AttentionRow(props: { item: AttentionItem; go: (id: ScreenId) => void; done: () => void }) {
  const { item } = props;
  const { busy, error, run } = useAction();
  const act = (f: () => Promise<void>) => run(async () => (await f(), props.done()));
  const about = [item.customer_name, item.invoice_number].filter(Boolean).join(" · ");
  return (
    <li class={`attention attention-${item.kind}`} data-kind={item.kind}>
      <div>
        <strong>{item.title}</strong>
        {about && <span class="sub"> — {about}</span>}
        <div>{item.detail}</div>
        {item.at && <div class="sub">{when(item.at)}</div>}
        {error && <div class="field-error" role="alert">{error}</div>}
      </div>
      <div class="actions">
        {(item.kind === "dispute" || item.kind === "human" || item.kind === "receipt_check") && (
          <>
            <button type="button" class="small" onClick={() => props.go("conversations")}>
              Open chat
            </button>
            <button type="button" class="small" disabled={busy} onClick={() => act(() => api.resolveAttention(item.id))}>
              Mark done
            </button>
          </>
        )}
        {(item.kind === "needs_review" || item.kind === "unmatched_payment") && (
          <button type="button" class="small" onClick={() => props.go("payments")}>
            {item.kind === "unmatched_payment" ? "Match it" : "Review"}
          </button>
        )}
        {item.kind === "whatsapp_paused" && (
          <button type="button" class="small" disabled={busy} onClick={() => act(api.resumeWhatsappSending)}>
            Resume sending
          </button>
        )}
        {(item.kind === "whatsapp_paused" || item.kind === "mpesa_refused") && (
          <button type="button" class="small" onClick={() => props.go("settings")}>
            Settings
          </button>
        )}
      </div>
    </li>
  );
}

/** Today's picture: money in, money owed, how collection is going, and what needs the merchant. */
export function Dashboard(props: { info: AppInfo | undefined; go: (id: ScreenId) => void }) {
  const live = useLive(api.dashboard, "dashboard", 15000);
  const d = live.data;
  return (
    <section aria-labelledby="screen-title">
      <h1 id="screen-title">Dashboard</h1>
      {props.info?.daraja_environment === "simulator" && (
        <p class="hint">
          You are in simulator mode: try the whole payment flow with pretend money on the{" "}
          <button type="button" class="link" onClick={() => props.go("simulator")}>
            Simulator
          </button>{" "}
          screen. Save your M-Pesa and WhatsApp details in Settings to go live.
        </p>
      )}
      {live.loading && !d && <Loading what="your numbers" />}
      {live.error && <ErrorBox message={live.error} onRetry={() => void live.refresh()} />}
      {d && (
        <>
          <div class="cards">
            <div class="card">
              <div class="label">Collected today</div>
              <div class="figure" data-testid="collected-today">{kes(d.collected_today)}</div>
              <div class="sub">{d.payments_today === 1 ? "1 payment" : `${d.payments_today} payments`}</div>
            </div>
            <div class="card">
              <div class="label">Collected this month</div>
              <div class="figure" data-testid="collected">{kes(d.collected_this_month)}</div>
            </div>
            <div class="card">
              <div class="label">Still owed</div>
              <div class="figure" data-testid="owed">{kes(d.owed)}</div>
              <div class="sub">
                {d.open_invoices === 1 ? "1 open invoice" : `${d.open_invoices} open invoices`}
                {d.overdue > 0 ? `, ${d.overdue} overdue` : ""}
              </div>
            </div>
          </div>

          <h2>Needs your attention</h2>
          {d.attention.length === 0 ? (
            <p class="sub" role="status">
              Nothing waiting on you. Disputes, customers asking for a person and payments to match will show here.
            </p>
          ) : (
            <ul class="attention-list" aria-label="Needs your attention">
              {d.attention.map((item) => (
                <AttentionRow key={`${item.kind}-${item.id}`} item={item} go={props.go} done={() => void live.refresh()} />
              ))}
            </ul>
          )}

          {d.open_invoices === 0 && d.collected_this_month === 0 ? (
            <Empty title="No invoices yet">
              Import your invoices on the{" "}
              <button type="button" class="link" onClick={() => props.go("invoices")}>
                Invoices
              </button>{" "}
              screen to start collecting.
              {props.info?.daraja_environment === "simulator" && (
                <>
                  {" "}
                  Or see a payment happen first, with made-up customers and pretend money:
                  <TrySamples onLoaded={() => props.go("simulator")} />
                </>
              )}
            </Empty>
          ) : (
            <div class="chart-grid">
              <div class="card">
                <h2>Collection rate by month</h2>
                <RateChart months={d.months} />
              </div>
              <div class="card">
                <h2>This month's chat funnel</h2>
                <FunnelChart funnel={d.funnel} />
              </div>
            </div>
          )}
        </>
      )}
    </section>
  );
}
