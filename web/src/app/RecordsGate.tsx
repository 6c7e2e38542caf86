// The pages that show the records (timeline, charts) get them decrypted from the store's
// library; this loads it once (showing progress) and hands the records on.

import type { ComponentChildren } from "preact";
import { useEffect } from "preact/hooks";
import type { DecryptedRecord } from "../fhir/records.ts";
import type { AppStore, State } from "./store.ts";

export function RecordsGate(props: { store: AppStore; state: State; children: (records: readonly DecryptedRecord[]) => ComponentChildren }) {
  const { store, state } = props;
  const library = state.library;
  useEffect(() => {
    if (library === null && state.client) void store.refreshLibrary();
  }, [library, state.client, store]);
  if (library !== null) return <>{props.children(library)}</>;
  const progress = state.libraryProgress;
  return (
    <div class="loading" role="status" aria-live="polite" data-testid="library-loading">
      <p>Decrypting your records in this page{progress ? ` (${progress.done} of ${progress.total})` : "…"}</p>
      <progress max={progress?.total || 1} value={progress?.done ?? 0} aria-label="Records decrypted" />
    </div>
  );
}
