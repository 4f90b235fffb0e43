import type { ComponentChildren } from "preact";

export function Empty(props: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty" role="status">
      <h3>{props.title}</h3>
      {props.children && <p>{props.children}</p>}
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
