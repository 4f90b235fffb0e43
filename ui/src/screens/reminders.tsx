import { useState } from "preact/hooks";
import { errorField, errorMessage, remindersApi, type PlannedReminder, type ReminderPolicy, type TemplateDef } from "../api";
import { Empty, ErrorBox, Loading } from "../components";
import { kes, when } from "../format";
import { useLoad } from "../load";

/** "-3, 0, 3, 7" → [-3, 0, 3, 7]; undefined when something is not a whole number. */
export function parseSteps(text: string): number[] | undefined {
  const parts = text.split(/[,\s]+/).filter((p) => p !== "");
  const steps = parts.map((p) => Number(p.replace("−", "-")));
  return steps.every((n) => Number.isInteger(n)) ? steps : undefined;
}

/** -3 → "3 days before the due date", 0 → "on the due date", 7 → "7 days late". */
export function stepWords(days: number): string {
  if (days === 0) return "on the due date";
  const n = Math.abs(days);
  const unit = n === 1 ? "day" : "days";
  return days < 0 ? `${n} ${unit} before the due date` : `${n} ${unit} late`;
}

/** The form's text fields, kept as typed so a half-written number does not jump around. */
interface Draft {
  enabled: boolean;
  steps: string;
  repeat_every_days: string;
  max_repeats: string;
  send_at: string;
  quiet_from: string;
  quiet_until: string;
  skip_sundays: boolean;
}

const hhmm = (t: string) => t.slice(0, 5);

function toDraft(p: ReminderPolicy): Draft {
  return {
    enabled: p.enabled,
    steps: p.steps.join(", "),
    repeat_every_days: String(p.repeat_every_days),
    max_repeats: String(p.max_repeats),
    send_at: hhmm(p.send_at),
    quiet_from: hhmm(p.quiet_from),
    quiet_until: hhmm(p.quiet_until),
    skip_sundays: p.skip_sundays,
  };
}

type Errors = Partial<Record<keyof Draft, string>>;

/** The policy to save, or the fields the merchant must fix first. */
function fromDraft(d: Draft): { policy?: ReminderPolicy; errors: Errors } {
  const errors: Errors = {};
  const steps = parseSteps(d.steps);
  if (!steps) errors.steps = "Write whole numbers of days separated by commas, like -3, 0, 3, 7.";
  const count = (s: string, field: keyof Draft) => {
    const n = Number(s);
    if (s.trim() === "" || !Number.isInteger(n) || n < 0) errors[field] = "Write a whole number, 0 or more.";
    return n;
  };
  const repeat = count(d.repeat_every_days, "repeat_every_days");
  const max = count(d.max_repeats, "max_repeats");
  for (const f of ["send_at", "quiet_from", "quiet_until"] as const) if (!/^\d\d:\d\d$/.test(d[f])) errors[f] = "Pick a time.";
  if (Object.keys(errors).length > 0) return { errors };
  return {
    errors,
    policy: {
      enabled: d.enabled,
      steps: steps!,
      repeat_every_days: repeat,
      max_repeats: max,
      send_at: `${d.send_at}:00`,
      quiet_from: `${d.quiet_from}:00`,
      quiet_until: `${d.quiet_until}:00`,
      skip_sundays: d.skip_sundays,
    },
  };
}

function FieldError(props: { id: string; message: string | undefined }) {
  return props.message ? (
    <div class="field-error" id={props.id} role="alert">
      {props.message}
    </div>
  ) : null;
}

function ScheduleEditor(props: { policy: ReminderPolicy; onSaved: () => void }) {
  const [draft, setDraft] = useState<Draft>(() => toDraft(props.policy));
  const [errors, setErrors] = useState<Errors>({});
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => {
    setDraft((d) => ({ ...d, [k]: v }));
    setSaved(false);
  };
  const input = (k: keyof Draft) => ({
    id: `rem-${k}`,
    "aria-invalid": errors[k] ? true : undefined,
    "aria-describedby": errors[k] ? `rem-${k}-error` : undefined,
  });

  const save = async (e: Event) => {
    e.preventDefault();
    const { policy, errors: local } = fromDraft(draft);
    setErrors(local);
    setProblem(undefined);
    if (!policy) return;
    setBusy(true);
    try {
      await remindersApi.savePolicy(policy);
      setSaved(true);
      props.onSaved();
    } catch (err) {
      const field = errorField(err) as keyof Draft | undefined;
      if (field && field in draft) setErrors({ [field]: errorMessage(err) });
      else setProblem(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  const steps = parseSteps(draft.steps);
  return (
    <form class="form card" onSubmit={save} aria-label="Reminder schedule">
      <label class="check">
        <input type="checkbox" checked={draft.enabled} onChange={(e) => set("enabled", (e.target as HTMLInputElement).checked)} />
        Send payment reminders on WhatsApp
      </label>
      <div class="field">
        <label for="rem-steps">Remind on these days, counted from the due date</label>
        <input {...input("steps")} value={draft.steps} onInput={(e) => set("steps", (e.target as HTMLInputElement).value)} />
        <div class="sub">
          {steps && steps.length > 0 ? steps.map(stepWords).join(" · ") : "-3 is three days before, 0 the due date, 7 a week late."}
        </div>
        <FieldError id="rem-steps-error" message={errors.steps} />
      </div>
      <div class="field-row">
        <div class="field">
          <label for="rem-repeat_every_days">Then remind again every (days)</label>
          <input
            {...input("repeat_every_days")}
            type="number"
            min="0"
            value={draft.repeat_every_days}
            onInput={(e) => set("repeat_every_days", (e.target as HTMLInputElement).value)}
          />
          <FieldError id="rem-repeat_every_days-error" message={errors.repeat_every_days} />
        </div>
        <div class="field">
          <label for="rem-max_repeats">At most this many more times</label>
          <input {...input("max_repeats")} type="number" min="0" value={draft.max_repeats} onInput={(e) => set("max_repeats", (e.target as HTMLInputElement).value)} />
          <FieldError id="rem-max_repeats-error" message={errors.max_repeats} />
        </div>
      </div>
      <div class="field-row">
        <div class="field">
          <label for="rem-send_at">Send at</label>
          <input {...input("send_at")} type="time" value={draft.send_at} onInput={(e) => set("send_at", (e.target as HTMLInputElement).value)} />
          <FieldError id="rem-send_at-error" message={errors.send_at} />
        </div>
        <div class="field">
          <label for="rem-quiet_from">Quiet from</label>
          <input {...input("quiet_from")} type="time" value={draft.quiet_from} onInput={(e) => set("quiet_from", (e.target as HTMLInputElement).value)} />
          <FieldError id="rem-quiet_from-error" message={errors.quiet_from} />
        </div>
        <div class="field">
          <label for="rem-quiet_until">until</label>
          <input {...input("quiet_until")} type="time" value={draft.quiet_until} onInput={(e) => set("quiet_until", (e.target as HTMLInputElement).value)} />
          <FieldError id="rem-quiet_until-error" message={errors.quiet_until} />
        </div>
      </div>
      <label class="check">
        <input type="checkbox" checked={draft.skip_sundays} onChange={(e) => set("skip_sundays", (e.target as HTMLInputElement).checked)} />
        No reminders on Sundays (they go out on Monday)
      </label>
      {problem && <ErrorBox message={problem} />}
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Saving…" : "Save schedule"}
        </button>
        {saved && (
          <span class="saved" role="status">
            Saved. The preview below shows the new schedule.
          </span>
        )}
      </div>
    </form>
  );
}

function Preview(props: { rows: PlannedReminder[]; enabled: boolean; timezone: string }) {
  if (!props.enabled) return <Empty title="Reminders are off">Turn them on above to see who would get one.</Empty>;
  if (props.rows.length === 0) return <Empty title="No reminders in the next 7 days">Nobody has an invoice at a reminder step this week.</Empty>;
  return (
    <table class="table" aria-label="Reminders in the next 7 days">
      <thead>
        <tr>
          <th>When</th>
          <th>Customer</th>
          <th>Invoice</th>
          <th class="num">Balance</th>
          <th>Step</th>
        </tr>
      </thead>
      <tbody>
        {props.rows.flatMap((r) =>
          r.invoices.map((i, n) => (
            <tr key={`${r.day}-${r.customer_name}-${i.number}`}>
              <td>{n === 0 ? when(r.at, props.timezone) : ""}</td>
              <td>{n === 0 ? r.customer_name : ""}</td>
              <td>{i.number}</td>
              <td class="num">{kes(i.balance)}</td>
              <td>
                Step {i.step}
                {i.days_from_due !== null && <span class="sub"> · {stepWords(i.days_from_due)}</span>}
              </td>
            </tr>
          )),
        )}
      </tbody>
    </table>
  );
}

const templateTitles: Record<string, string> = {
  malipo_payment_reminder: "Payment reminder",
  malipo_promise_followup: "After a missed promise to pay",
};

/** {{1}} → [customer name], so the merchant reads the message as the customer will. */
export function readable(t: TemplateDef): string {
  return t.body.replace(/\{\{(\d+)\}\}/g, (_, n: string) => `[${t.params[Number(n) - 1] ?? n}]`);
}

function Templates(props: { templates: TemplateDef[] }) {
  const names = [...new Set(props.templates.map((t) => t.name))];
  return (
    <div class="templates">
      {names.map((name) => (
        <div class="card" key={name}>
          <h3>{templateTitles[name] ?? name}</h3>
          <div class="sub">WhatsApp template {name}</div>
          {props.templates
            .filter((t) => t.name === name)
            .map((t) => (
              <div class="template" key={t.language} lang={t.language}>
                <div class="label">{t.language === "sw" ? "Swahili" : t.language === "en" ? "English" : t.language}</div>
                <p>{readable(t)}</p>
                {t.quick_replies.length > 0 && <div class="sub">Button: {t.quick_replies.map((q) => q.text).join(", ")}</div>}
              </div>
            ))}
        </div>
      ))}
    </div>
  );
}

export function Reminders(props: { timezone?: string | null }) {
  const timezone = props.timezone ?? "Africa/Nairobi";
  const policy = useLoad(remindersApi.policy);
  const preview = useLoad(() => remindersApi.preview(7));
  const templates = useLoad(remindersApi.templates);
  const enabled = policy.data?.enabled ?? true;
  const onSaved = () => {
    policy.reload();
    preview.reload();
  };
  return (
    <section aria-labelledby="screen-title">
      <h1 id="screen-title">Reminders</h1>
      <h2>Schedule</h2>
      {policy.loading && !policy.data && <Loading what="the schedule" />}
      {policy.error && <ErrorBox message={policy.error} onRetry={policy.reload} />}
      {policy.data && <ScheduleEditor policy={policy.data} onSaved={onSaved} />}

      <h2>Next 7 days</h2>
      {preview.loading && <Loading what="the next reminders" />}
      {preview.error && <ErrorBox message={preview.error} onRetry={preview.reload} />}
      {!preview.loading && !preview.error && preview.data && <Preview rows={preview.data} enabled={enabled} timezone={timezone} />}

      <h2>Message templates</h2>
      <p class="hint">
        Outside WhatsApp's 24-hour chat window, reminders use these templates, which Meta must approve first. To change the wording,
        submit a new template in WhatsApp Manager.
      </p>
      {templates.loading && <Loading what="the templates" />}
      {templates.error && <ErrorBox message={templates.error} onRetry={templates.reload} />}
      {templates.data && templates.data.length === 0 && <Empty title="No reminder templates" />}
      {templates.data && templates.data.length > 0 && <Templates templates={templates.data} />}
    </section>
  );
}
