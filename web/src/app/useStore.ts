import { useEffect, useState } from "preact/hooks";
import type { AppStore, State } from "./store.ts";

/** The store's state, re-rendering the component on every change. */
export function useStore(store: AppStore): State {
  const [state, setState] = useState(store.state);
  useEffect(() => {
    setState(store.state);
    return store.subscribe(() => setState(store.state));
  }, [store]);
  return state;
}
