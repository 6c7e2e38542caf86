// Loading what a page shows: one rule for every page (a page's own copy of it drifted).
// The last data stays shown while reloading and after a failed reload (with the error beside
// it, and a retry); an answer that arrives after a newer load started is dropped, so a slow
// first load cannot overwrite a fresh one.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { toKizunaError, type KizunaError } from "../core/errors.ts";

export type Loaded<T> = {
  data: T | null;
  error: KizunaError | null;
  loading: boolean;
  /** Load again; settles when this load has (never rejects: a failure lands in `error`). */
  reload: () => Promise<void>;
};

const asLoadError = (error: unknown): KizunaError => toKizunaError(error, "Nothing was changed; try again.");

/** `load()` now and on `reload()`. A change of `key` (another client: acting for a ward, another
 * filter) clears the data and loads again. `enabled: false` loads nothing (a page that has
 * nothing to show in some state) and leaves `loading` false. */
export function useLoad<T>(load: () => Promise<T>, key: unknown, options: { enabled?: boolean } = {}): Loaded<T> {
  const enabled = options.enabled ?? true;
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<KizunaError | null>(null);
  const [loading, setLoading] = useState(enabled);
  const run = useRef(0);
  const current = useRef(load);
  current.current = load;
  const reload = useCallback(async () => {
    const mine = ++run.current;
    setLoading(true);
    try {
      const found = await current.current();
      if (mine !== run.current) return;
      setData(found);
      setError(null);
    } catch (failure) {
      if (mine !== run.current) return;
      setError(asLoadError(failure));
    } finally {
      if (mine === run.current) setLoading(false);
    }
  }, []);
  useEffect(() => {
    setData(null);
    if (enabled) {
      void reload();
    } else {
      run.current++;
      setLoading(false);
    }
  }, [key, enabled, reload]);
  return { data, error, loading, reload };
}
