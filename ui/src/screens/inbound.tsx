import { useState } from "preact/hooks";
import { errorMessage, settingsApi, type InboundTest } from "../api";
import { ErrorBox } from "../components";
import { when } from "../format";
import { useLoad } from "../load";

/** Where the running engine gets WhatsApp messages and paybill confirmations, and "Test inbound". */
export function InboundPanel() {
  const view = useLoad(settingsApi.inboundStatus);
  const [test, setTest] = useState<InboundTest>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const run = async () => {
    setBusy(true);
    setError(undefined);
    setTest(undefined);
    try {
      setTest(await settingsApi.testInbound());
      view.reload();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  const s = view.data?.status;
  return (
    <div class="inbound-panel">
      {view.error && <ErrorBox message={view.error} onRetry={view.reload} />}
      {s && (
        <p role="status" data-testid="inbound-status">
          {s.mode === "relay"
            ? s.connected
              ? `Connected to the relay${s.last_contact ? ` (last contact ${when(s.last_contact)})` : ""}; ${s.received} events received since Malipo started.`
              : `Not connected to the relay${s.last_error ? `: ${s.last_error}` : "."}`
            : "Direct: Meta and Daraja call this computer's webhook server (through a tunnel)."}
        </p>
      )}
      {view.data?.urls && (
        <details>
          <summary>Addresses to give Meta and Daraja</summary>
          <dl class="urls">
            <dt>WhatsApp callback URL (Meta)</dt>
            <dd>{view.data.urls.whatsapp}</dd>
            <dt>C2B confirmation URL (Daraja)</dt>
            <dd>{view.data.urls.c2b_confirmation}</dd>
            <dt>C2B validation URL (Daraja)</dt>
            <dd>{view.data.urls.c2b_validation}</dd>
          </dl>
        </details>
      )}
      <button type="button" class="secondary" disabled={busy} onClick={() => void run()}>
        {busy ? "Testing…" : "Test inbound"}
      </button>
      {error && <ErrorBox message={error} />}
      {test && (
        <ol class="test-steps" aria-label="Inbound test">
          {test.steps.map((step) => (
            <li key={step.step} class={`step-${step.outcome}`}>
              <strong>{step.outcome === "passed" ? "✓" : step.outcome === "failed" ? "✗" : "–"}</strong> {step.label}
              {step.detail && <div class="sub">{step.detail}</div>}
            </li>
          ))}
        </ol>
      )}
      {test && <p class={test.ok ? "sub" : "field-error"}>{test.ok ? "Inbound works: messages and payments will arrive." : "Inbound does not work yet: see the step that failed."}</p>}
    </div>
  );
}
