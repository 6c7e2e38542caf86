// What the "who read what" and "guardians & emergency" pages share: loading with a clear error
// and a retry, a failure shown with what to do (the user's input is never cleared by a
// failure), times and providers for people.

import type { ComponentChildren } from "preact";
import { InputError, KizunaError, toKizunaError } from "../../../core/errors.ts";
import type { RegistryProvider } from "../../../patient/chain.ts";
import { formatTime, shortAddress } from "../../../ui/format.ts";
import { ErrorBanner } from "../../../ui/Messages.tsx";
import { UserRejected } from "../../../wallet/eip1193.ts";
import "./care.css";

export const asKizunaError = (error: unknown): KizunaError => toKizunaError(error, "Nothing was changed; try again.");

/** A failure for people: a declined signature says that nothing happened. */
export function Failure(props: { error: KizunaError | null; onDismiss?: () => void; retry?: () => void }) {
  const { error } = props;
  if (!error) return null;
  const shown = error instanceof UserRejected
    ? new KizunaError("You declined the request in your wallet, so nothing was changed. What you entered is kept: try again when ready.")
    : error;
  return (
    <ErrorBanner error={shown} {...(props.onDismiss ? { onDismiss: props.onDismiss } : {})}
                 {...(props.retry ? { action: { label: "Try again", run: props.retry } } : {})} />
  );
}

/** The message of `error` when it is about `field` (to show under that input). */
export function fieldMessage(error: KizunaError | null, ...fields: string[]): string | null {
  if (!error) return null;
  const field = error instanceof InputError ? error.field : (error as { field?: string }).field;
  return field && fields.includes(field) ? (error instanceof InputError ? error.reason : error.shortMessage) : null;
}

import type { Loaded } from "../../../ui/useLoad.ts";

export { useLoad, type Loaded } from "../../../ui/useLoad.ts";

/** A time (seconds) for people: web/src/ui/format.ts (plain TypeScript, so non-page code
 *  such as web/src/provider/grants.ts shares it). */
export { formatTime };

export function formatDate(seconds: number): string {
  return new Date(seconds * 1000).toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" });
}

/** A provider for people: the registry has no names, so the address (short, the full one as its
 * title and for screen readers) and whether a registrar verified it. */
export function ProviderName(props: { address: string; registry: Map<string, RegistryProvider> | null }) {
  const entry = props.registry?.get(props.address.toLowerCase());
  return (
    <span class="care-provider">
      <code class="care-provider-name" title={props.address} aria-label={props.address}>{shortAddress(props.address)}</code>
      {entry ? (
        entry.verified && entry.active
          ? <span class="care-badge care-badge-ok">Verified provider</span>
          : entry.active
            ? <span class="care-badge care-badge-info">Registered provider</span>
            : <span class="care-badge care-badge-bad">Suspended</span>
      ) : props.registry ? <span class="care-badge care-badge-bad">Not in the registry</span> : null}
    </span>
  );
}

export function registryMap(providers: RegistryProvider[]): Map<string, RegistryProvider> {
  return new Map(providers.map((p) => [p.address.toLowerCase(), p]));
}

/** A page's title with its Refresh button (a page that reads the chain or the service again on
 * request), as the care, provider, auditor and researcher pages show it. */
export function RefreshHead(props: { id: string; title: ComponentChildren; loaded: Loaded<unknown> }) {
  const { loaded } = props;
  return (
    <div class="care-head">
      <h1 id={props.id}>{props.title}</h1>
      <button type="button" class="button" onClick={() => void loaded.reload()} disabled={loaded.loading} aria-busy={loaded.loading}>
        {loaded.loading ? "Refreshing…" : "Refresh"}
      </button>
    </div>
  );
}

export function Section(props: { id: string; title: string; children: ComponentChildren; intro?: ComponentChildren }) {
  return (
    <section class="care-section" aria-labelledby={props.id}>
      <h2 id={props.id}>{props.title}</h2>
      {props.intro ? <p class="care-intro">{props.intro}</p> : null}
      {props.children}
    </section>
  );
}
