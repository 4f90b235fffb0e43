import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { UnlistenFn } from "@tauri-apps/api/event";
import { api, errorMessage } from "./api";

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload: () => void;
}

/** Runs `fetcher` on mount (and on `reload`), tracking loading and error states for the screen. */
export function useLoad<T>(fetcher: () => Promise<T>): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    fetcher()
      .then((d) => live && (setData(d), setError(undefined)))
      .catch((e) => live && setError(errorMessage(e)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** Reloads whenever a payment changes, so screens stay live without a manual refresh. */
export function useReloadOnPayments(reload: () => void) {
  useEffect(() => {
    let stop: (() => void) | undefined;
    let cancelled = false;
    api
      .onPaymentUpdated(() => reload())
      .then((unlisten) => (cancelled ? unlisten() : (stop = unlisten)))
      .catch(() => undefined);
    return () => {
      cancelled = true;
      stop?.();
    };
  }, [reload]);
}

export interface Live<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  /** Fetches now; resolves once the answer (or error) has been applied. */
  refresh: () => Promise<void>;
}

/**
 * Keeps `fetcher`'s answer fresh while the screen is open: on mount and whenever `key` changes, on every
 * "conversation-updated" and "payment-updated" event, and every `everyMs` as a fallback. Unlike `useLoad`
 * it keeps showing the last answer while refreshing (no flicker), never lets an older answer overwrite a
 * newer one, and does not stack polls behind a slow core.
 */
export function useLive<T>(fetcher: () => Promise<T>, key: string | number, everyMs: number): Live<T> {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const fetchRef = useRef(fetcher);
  fetchRef.current = fetcher;
  const issued = useRef(0);
  const applied = useRef(0);
  const inFlight = useRef(0);
  const alive = useRef(true);
  const last = useRef<string>();

  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  const refresh = useCallback(async () => {
    const n = ++issued.current;
    inFlight.current++;
    try {
      const data = await fetchRef.current();
      if (!alive.current || n <= applied.current) return;
      applied.current = n;
      const json = JSON.stringify(data);
      if (json === last.current) {
        setState((s) => (s.error || s.loading ? { data: s.data, loading: false } : s));
      } else {
        last.current = json;
        setState({ data, loading: false });
      }
    } catch (e) {
      if (!alive.current || n <= applied.current) return;
      applied.current = n;
      setState((s) => ({ data: s.data, error: errorMessage(e), loading: false }));
    } finally {
      inFlight.current--;
    }
  }, []);

  useEffect(() => {
    // Answers to requests made for the previous key are dropped.
    applied.current = issued.current;
    last.current = undefined;
    setState({ loading: true });
    void refresh();
    const timer = setInterval(() => {
      if (inFlight.current === 0) void refresh();
    }, everyMs);
    return () => clearInterval(timer);
  }, [key, everyMs, refresh]);

  useEffect(() => {
    let cancelled = false;
    const stops: UnlistenFn[] = [];
    const keep = (p: Promise<UnlistenFn>) =>
      p.then((stop) => (cancelled ? stop() : void stops.push(stop))).catch(() => undefined);
    void keep(api.onConversationUpdated(() => void refresh()));
    void keep(api.onPaymentUpdated(() => void refresh()));
    return () => {
      cancelled = true;
      stops.forEach((stop) => stop());
    };
  }, [refresh]);

  return { data: state.data, error: state.error, loading: state.loading, refresh };
}

/** A button's action: `busy` while it runs, `error` (in words) if it failed. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const run = async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}
