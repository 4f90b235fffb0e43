import { useEffect, useState } from "preact/hooks";
import { api, errorMessage, type ImportField, type ImportPreview, type ImportReport, type Mapping } from "../api";
import { day, kes } from "../format";

const fields: { id: ImportField; label: string; required: boolean }[] = [
  { id: "number", label: "Invoice number", required: true },
  { id: "customer", label: "Customer", required: true },
  { id: "phone", label: "Phone (M-Pesa / WhatsApp)", required: false },
  { id: "amount", label: "Amount", required: true },
  { id: "balance", label: "Balance still owed", required: false },
  { id: "due_date", label: "Due date", required: true },
  { id: "issue_date", label: "Issue date", required: false },
  { id: "description", label: "Description", required: false },
];

type Step = "pick" | "check" | "importing" | "done";

const steps: [Step, string][] = [
  ["pick", "Choose a file"],
  ["check", "Check columns and rows"],
  ["importing", "Import"],
  ["done", "Done"],
];

/** Pick a CSV or Excel file → check what each column means and which rows are bad → import, with progress. */
export function ImportWizard(props: { onClose: (imported: boolean) => void }) {
  const [step, setStep] = useState<Step>("pick");
  const [file, setFile] = useState<{ name: string; bytes: Uint8Array }>();
  const [mapping, setMapping] = useState<Mapping>({});
  const [preview, setPreview] = useState<ImportPreview>();
  const [report, setReport] = useState<ImportReport>();
  const [progress, setProgress] = useState({ done: 0, total: 0 });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  useEffect(() => {
    let stop: (() => void) | undefined;
    let cancelled = false;
    api
      .onImportProgress((p) => setProgress(p))
      .then((unlisten) => (cancelled ? unlisten() : (stop = unlisten)))
      .catch(() => undefined);
    return () => {
      cancelled = true;
      stop?.();
    };
  }, []);

  const check = async (f: { name: string; bytes: Uint8Array }, m: Mapping) => {
    setBusy(true);
    setError(undefined);
    try {
      const p = await api.importPreview(f.name, f.bytes, m);
      setPreview(p);
      setMapping(p.mapping);
      setStep("check");
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const pick = async (input: HTMLInputElement) => {
    const chosen = input.files?.[0];
    if (!chosen) return;
    const f = { name: chosen.name, bytes: new Uint8Array(await chosen.arrayBuffer()) };
    setFile(f);
    await check(f, {});
  };

  const commit = async () => {
    if (!preview) return;
    setStep("importing");
    setProgress({ done: 0, total: preview.good_rows });
    setError(undefined);
    try {
      setReport(await api.importCommit("valid_rows_only"));
      setStep("done");
    } catch (e) {
      setError(errorMessage(e));
      setStep("check");
    }
  };

  const choose = (field: ImportField, header: string) => setMapping({ ...mapping, [field]: header });
  const good = preview?.good_rows ?? 0;
  const bad = preview?.bad_rows ?? 0;

  return (
    <section class="wizard card" aria-labelledby="wizard-title">
      <div class="wizard-head">
        <h2 id="wizard-title">Import invoices</h2>
        <button type="button" class="secondary" onClick={() => props.onClose(step === "done")} disabled={step === "importing"}>
          {step === "done" ? "Close" : "Cancel"}
        </button>
      </div>
      <ol class="stepper" aria-label="Import steps">
        {steps.map(([id, label], i) => (
          <li key={id} class={id === step ? "current" : ""} aria-current={id === step ? "step" : undefined}>
            {i + 1}. {label}
          </li>
        ))}
      </ol>
      {error && (
        <div class="error" role="alert">
          {error}
        </div>
      )}

      {step === "pick" && (
        <div>
          <p>
            Choose a CSV or Excel file with one invoice per row. Malipo finds the columns (invoice number, customer, phone, amount,
            due date…) and shows every problem before anything is saved.
          </p>
          <label class="file-pick">
            <span>{busy ? "Reading the file…" : "Choose file"}</span>
            <input type="file" accept=".csv,.txt,.xlsx,.xls,.xlsm,.ods" aria-label="Invoice file" disabled={busy} onChange={(e) => void pick(e.currentTarget)} />
          </label>
        </div>
      )}

      {step === "check" && preview && file && (
        <div>
          <h3>Columns in {preview.source}</h3>
          <div class="mapping">
            {fields.map((f) => (
              <label key={f.id}>
                <span>
                  {f.label}
                  {f.required && <abbr title="required"> *</abbr>}
                </span>
                <select value={mapping[f.id] ?? ""} onChange={(e) => choose(f.id, e.currentTarget.value)} aria-label={`Column for ${f.label}`}>
                  <option value="">— none —</option>
                  {preview.headers.map((h) => (
                    <option key={h} value={h}>
                      {h}
                    </option>
                  ))}
                </select>
              </label>
            ))}
          </div>
          <button type="button" class="secondary" disabled={busy} onClick={() => void check(file, mapping)}>
            {busy ? "Checking…" : "Check again with these columns"}
          </button>

          <h3>Rows</h3>
          <p role="status" data-testid="import-summary">
            {preview.data_rows} rows: <strong>{good} ready</strong>
            {bad > 0 && (
              <>
                , <strong class="danger">{bad} with problems</strong> (listed below; they will be skipped)
              </>
            )}
            {preview.plan && (
              <>
                . Importing makes {preview.plan.created} new and updates {preview.plan.updated} invoices
                {preview.plan.unchanged > 0 && `; ${preview.plan.unchanged} are already up to date`}.
              </>
            )}
          </p>
          {preview.errors.length > 0 && (
            <table class="table" aria-label="Rows with problems">
              <thead>
                <tr>
                  <th>Line</th>
                  <th>Column</th>
                  <th>Problem</th>
                </tr>
              </thead>
              <tbody>
                {preview.errors.map((e, i) => (
                  <tr key={i}>
                    <td>{e.line}</td>
                    <td>{e.column ?? ""}</td>
                    <td>{e.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {preview.errors_total > preview.errors.length && <p class="sub">…and {preview.errors_total - preview.errors.length} more problems.</p>}
          {preview.sample.length > 0 && (
            <table class="table" aria-label="First rows ready to import">
              <thead>
                <tr>
                  <th>Line</th>
                  <th>Number</th>
                  <th>Customer</th>
                  <th class="num">Amount</th>
                  <th>Due</th>
                </tr>
              </thead>
              <tbody>
                {preview.sample.map((r) => (
                  <tr key={r.line}>
                    <td>{r.line}</td>
                    <td>{r.number}</td>
                    <td>
                      {r.customer_name}
                      {r.phone && <div class="sub">{r.phone}</div>}
                    </td>
                    <td class="num">{kes(r.amount)}</td>
                    <td>{day(r.due_date)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <div class="wizard-foot">
            <button type="button" class="primary" disabled={busy || good === 0} onClick={() => void commit()}>
              {bad > 0 ? `Import ${good} good rows, skip ${bad}` : `Import ${good} invoices`}
            </button>
          </div>
        </div>
      )}

      {step === "importing" && (
        <div>
          <p>Saving your invoices…</p>
          <progress aria-label="Import progress" max={Math.max(progress.total, 1)} value={progress.done} />
          <div class="sub">
            {progress.done} of {progress.total}
          </div>
        </div>
      )}

      {step === "done" && report && (
        <div role="status" data-testid="import-done">
          <p>
            <strong>Imported.</strong> {report.created} new, {report.updated} updated, {report.unchanged} unchanged, {report.skipped} skipped.
          </p>
          {report.warnings.length > 0 && (
            <ul>
              {report.warnings.map((w, i) => (
                <li key={i}>
                  Line {w.line} ({w.invoice}): {w.message}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}
