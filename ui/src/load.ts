import { useCallback, useEffect, useState } from "preact/hooks";
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
