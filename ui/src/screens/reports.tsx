import { useEffect, useState } from "preact/hooks";
import type { ChartConfiguration } from "chart.js";
import { ChartView } from "../chart";
import { errorMessage, reportsApi, type Report } from "../api";
import { Empty, ErrorBox, Loading } from "../components";
import { day, kes, sourceLabel } from "../format";

export type PeriodKind = "this_month" | "last_month" | "last_3_months" | "custom";

const periodLabels: Record<PeriodKind, string> = {
  this_month: "This month",
  last_month: "Last month",
  last_3_months: "Last 3 months",
  custom: "Choose dates",
};

/** Today as YYYY-MM-DD in the merchant's timezone. */
export function todayIn(timeZone: string, now = new Date()): string {
  // From the parts, not a locale's layout: WebKitGTK may lack the locale data that makes "en-CA" ISO-shaped.
  const parts = new Intl.DateTimeFormat("en-US", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(now);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${part("year")}-${part("month")}-${part("day")}`;
}

const iso = (y: number, m: number, d: number) => new Date(Date.UTC(y, m - 1, d)).toISOString().slice(0, 10);

/** The dates a period covers, up to today (a report cannot know the future). */
export function periodDates(kind: Exclude<PeriodKind, "custom">, today: string): { from: string; to: string } {
  const [y, m] = today.split("-").map(Number);
  switch (kind) {
    case "this_month":
      return { from: iso(y, m, 1), to: today };
    case "last_month":
      // Day 0 of this month is the last day of the previous one.
      return { from: iso(y, m - 1, 1), to: iso(y, m, 0) };
    case "last_3_months":
      return { from: iso(y, m - 2, 1), to: today };
  }
}

const percent = (x: number | null) => (x === null ? "—" : `${x}%`);
const days = (x: number | null) => (x === null ? "—" : `${x} days`);

const green = "#0b7a4b";
const palette = [green, "#f5b82e", "#1f8fd6", "#b3261e", "#5d6b64", "#0b3d2a"];

function bar(labels: string[], data: number[], horizontal = false): ChartConfiguration {
  return {
    type: "bar",
    data: { labels, datasets: [{ data, backgroundColor: green }] },
    options: {
      indexAxis: horizontal ? "y" : "x",
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true }, y: { beginAtZero: true } },
    },
  };
}

function Figures(props: { r: Report }) {
  const r = props.r;
  return (
    <div class="cards">
      <div class="card">
        <div class="label">Money collected</div>
        <div class="figure" data-testid="collected">{kes(r.amount_collected)}</div>
        <div class="sub">All payments received in the period</div>
      </div>
      <div class="card">
        <div class="label">Collected of what fell due</div>
        <div class="figure" data-testid="rate-amount">{percent(r.collection_rate_by_amount)}</div>
        <div class="sub">
          {kes(r.amount_due_collected)} of {kes(r.amount_due)} due
        </div>
      </div>
      <div class="card">
        <div class="label">Invoices paid in full</div>
        <div class="figure" data-testid="rate-count">{percent(r.collection_rate_by_count)}</div>
        <div class="sub">
          {r.invoices_due_paid} of {r.invoices_due} invoices due
        </div>
      </div>
      <div class="card">
        <div class="label">Days to get paid</div>
        <div class="figure">{days(r.average_days_to_pay)}</div>
        <div class="sub">Average from invoice to payment; half were paid within {days(r.median_days_to_pay)}</div>
      </div>
      <div class="card">
        <div class="label">Days of sales owed (DSO)</div>
        <div class="figure">{days(r.dso_days)}</div>
        <div class="sub">How many days of sales customers still owe you</div>
      </div>
      <div class="card">
        <div class="label">Collection effectiveness (CEI)</div>
        <div class="figure">{percent(r.cei)}</div>
        <div class="sub">Of what could be collected, how much was; 100% is perfect</div>
      </div>
      <div class="card">
        <div class="label">At risk</div>
        <div class="figure">{percent(r.at_risk_share)}</div>
        <div class="sub">Share of what is owed that is over 90 days late</div>
      </div>
    </div>
  );
}

function Charts(props: { r: Report }) {
  const r = props.r;
  const agingLabels = ["Not yet due", "1–30 days late", "31–60 days late", "61–90 days late", "Over 90 days late"];
  const aging = [r.aging.current, r.aging.days_1_30, r.aging.days_31_60, r.aging.days_61_90, r.aging.days_over_90];
  const funnelLabels = ["Got a reminder", "Replied", "Agreed to pay in the chat", "Got the M-Pesa prompt", "Paid"];
  const funnel = [r.funnel.reminded, r.funnel.replied, r.funnel.confirmed, r.funnel.pushed, r.funnel.paid];
  const sourceLabels = r.sources.map((s) => sourceLabel(s.source));
  // Configs are built once per report so the charts are not redrawn on every render.
  const [configs] = useState(() => ({
    aging: bar(agingLabels, aging),
    funnel: bar(funnelLabels, funnel, true),
    sources: {
      type: "doughnut",
      data: { labels: sourceLabels, datasets: [{ data: r.sources.map((s) => s.amount), backgroundColor: palette }] },
      options: { maintainAspectRatio: false, animation: false, plugins: { legend: { position: "right" } } },
    } as ChartConfiguration,
  }));
  const describe = (labels: string[], values: string[]) => labels.map((l, i) => `${l}: ${values[i]}`).join(", ");
  return (
    <div class="chart-grid">
      <div class="card">
        <h3>What is owed, by how late</h3>
        <ChartView config={configs.aging} summary={describe(agingLabels, aging.map(kes))} />
      </div>
      <div class="card">
        <h3>From reminder to payment (customers)</h3>
        <ChartView config={configs.funnel} summary={describe(funnelLabels, funnel.map(String))} />
      </div>
      <div class="card">
        <h3>How customers paid</h3>
        {r.sources.length === 0 ? (
          <p class="sub">No payments in this period.</p>
        ) : (
          <ChartView config={configs.sources} summary={describe(sourceLabels, r.sources.map((s) => kes(s.amount)))} />
        )}
      </div>
    </div>
  );
}

function Tables(props: { r: Report }) {
  const r = props.r;
  return (
    <div class="chart-grid">
      <div>
        <h2>M-Pesa prompts and their answers</h2>
        {r.stk_outcomes.length === 0 ? (
          <p class="sub">No M-Pesa prompts in this period.</p>
        ) : (
          <table class="table" aria-label="M-Pesa prompt outcomes">
            <thead>
              <tr>
                <th>Answer</th>
                <th class="num">Prompts</th>
              </tr>
            </thead>
            <tbody>
              {r.stk_outcomes.map((o) => (
                <tr key={String(o.result_code)}>
                  <td>{o.meaning}</td>
                  <td class="num">{o.count}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      <div>
        <h2>Which reminders led to payment</h2>
        {r.reminder_steps.length === 0 ? (
          <p class="sub">No reminders were sent in this period.</p>
        ) : (
          <table class="table" aria-label="Payments after each reminder step">
            <thead>
              <tr>
                <th>Reminder</th>
                <th class="num">Sent</th>
                <th class="num">Paid within 7 days</th>
              </tr>
            </thead>
            <tbody>
              {r.reminder_steps.map((s) => (
                <tr key={s.step}>
                  <td>Step {s.step}</td>
                  <td class="num">{s.sent}</td>
                  <td class="num">
                    {s.paid_within_7_days} ({percent(s.conversion)})
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </div>
  );
}

function Export(props: { from: string; to: string }) {
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState<string>();
  const [error, setError] = useState<string>();
  useEffect(() => (setSaved(undefined), setError(undefined)), [props.from, props.to]);
  const run = async () => {
    setBusy(true);
    setSaved(undefined);
    setError(undefined);
    try {
      setSaved(await reportsApi.exportCsv(props.from, props.to));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="export">
      <button type="button" class="secondary" disabled={busy} onClick={run}>
        {busy ? "Saving…" : "Export CSV"}
      </button>
      {saved && (
        <span class="saved" role="status">
          Saved to {saved}
        </span>
      )}
      {error && <ErrorBox message={error} />}
    </div>
  );
}

export function Reports(props: { timezone?: string | null }) {
  const today = todayIn(props.timezone ?? "Africa/Nairobi");
  const [kind, setKind] = useState<PeriodKind>("this_month");
  const [custom, setCustom] = useState(() => periodDates("this_month", today));
  const { from, to } = kind === "custom" ? custom : periodDates(kind, today);
  const badRange = !from || !to || from > to;

  const [report, setReport] = useState<Report>();
  const [error, setError] = useState<string>();
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (badRange) return;
    let live = true;
    setLoading(true);
    setError(undefined);
    reportsApi
      .report(from, to)
      .then((r) => live && setReport(r))
      .catch((e) => live && (setError(errorMessage(e)), setReport(undefined)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [from, to, tick, badRange]);

  const nothing = report && report.invoices_due === 0 && report.amount_collected === 0 && report.aging.current + report.aging.days_1_30 + report.aging.days_31_60 + report.aging.days_61_90 + report.aging.days_over_90 === 0;
  return (
    <section aria-labelledby="screen-title">
      <h1 id="screen-title">Reports</h1>
      <div class="toolbar">
        <div role="group" aria-label="Period" class="chips">
          {(Object.keys(periodLabels) as PeriodKind[]).map((k) => (
            <button type="button" key={k} class={k === kind ? "chip active" : "chip"} aria-pressed={k === kind} onClick={() => setKind(k)}>
              {periodLabels[k]}
            </button>
          ))}
        </div>
        {kind === "custom" && (
          <div class="dates">
            <label>
              From <input type="date" value={custom.from} max={today} onInput={(e) => setCustom({ ...custom, from: (e.target as HTMLInputElement).value })} />
            </label>
            <label>
              To <input type="date" value={custom.to} max={today} onInput={(e) => setCustom({ ...custom, to: (e.target as HTMLInputElement).value })} />
            </label>
          </div>
        )}
        {!badRange && <Export from={from} to={to} />}
      </div>
      {badRange ? (
        <div class="field-error" role="alert">
          Pick a start date on or before the end date.
        </div>
      ) : (
        <p class="sub">
          {day(from)} to {day(to)}
        </p>
      )}
      {loading && <Loading what="the report" />}
      {error && <ErrorBox message={error} onRetry={() => setTick((t) => t + 1)} />}
      {!loading && report && nothing && <Empty title="Nothing to report for these dates">No invoices fell due, nothing was paid and nothing is owed.</Empty>}
      {!loading && report && !nothing && (
        <div key={`${report.from}-${report.to}-${tick}`}>
          <Figures r={report} />
          <Charts r={report} />
          <Tables r={report} />
        </div>
      )}
    </section>
  );
}
