import type { ComponentChildren } from "preact";
import { api } from "./api";
import { useAction } from "./load";

export function Empty(props: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty" role="status">
      <h3>{props.title}</h3>
      {props.children && <div class="empty-body">{props.children}</div>}
    </div>
  );
}

export function ErrorBox(props: { message: string; onRetry?: () => void }) {
  return (
    <div class="error" role="alert">
      <strong>Something went wrong.</strong> <span>{props.message}</span>
      {props.onRetry && (
        <button type="button" onClick={props.onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Loading(props: { what: string }) {
  return (
    <div class="loading" role="progressbar" aria-label={`Loading ${props.what}`}>
      <span class="spinner" /> Loading {props.what}…
    </div>
  );
}

/** Simulator mode only: three made-up invoices so a new merchant can try a payment before importing. */
export function TrySamples(props: { onLoaded: () => void }) {
  const { busy, error, run } = useAction();
  const load = () => run(async () => (await api.loadSampleInvoices(), props.onLoaded()));
  return (
    <div class="try-samples">
      <button type="button" class="primary" disabled={busy} onClick={() => void load()}>
        {busy ? "Adding…" : "Try it with 3 sample invoices"}
      </button>
      {error && (
        <div class="field-error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}
