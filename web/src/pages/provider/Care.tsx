// The provider's care page: ask patients for access (and see each request's state), send a
// report, prescription or booking, and break-glass where a patient's policy allows it. Built on
// the provider context (provider/context.ts) of the connected wallet.

import { useMemo } from "preact/hooks";
import type { AppStore, State } from "../../app/store.ts";
import { ProviderCare } from "../../provider/care.ts";
import { providerContextOf } from "../../provider/context.ts";
import { BreakGlass } from "./care/BreakGlass.tsx";
import { Failure, useKnownPatients } from "./care/parts.tsx";
import { RequestAccess } from "./care/RequestAccess.tsx";
import { SendMessage } from "./care/SendMessage.tsx";

/** The provider care client of the connected wallet, kept while the connection is the same. */
export function useProviderCare(store: AppStore, state: State): ProviderCare | null {
  const { wallet, signer, keys, deployment } = state;
  return useMemo(() => {
    const ctx = providerContextOf({ api: store.api, apiOptions: store.apiOptions, wallet, signer, keys, deployment });
    return ctx ? new ProviderCare(ctx) : null;
  }, [store, wallet, signer, keys, deployment]);
}

function CareSections(props: { care: ProviderCare }) {
  const known = useKnownPatients(props.care);
  return (
    <>
      <Failure error={known.error} retry={known.reload} />
      <RequestAccess care={props.care} known={known.data ?? []} />
      <section class="care-section" aria-labelledby="send-title">
        <SendMessage care={props.care} known={known.data ?? []} />
      </section>
      <BreakGlass care={props.care} known={known.data ?? []} />
    </>
  );
}

export function Care(props: { store: AppStore; state: State }) {
  const care = useProviderCare(props.store, props.state);
  return (
    <section aria-labelledby="provider-care-title" data-testid="provider-care-page">
      <h1 id="provider-care-title">Care</h1>
      <p class="care-intro">Ask patients for access, send them reports, prescriptions and bookings, and open emergency access where their policy allows it. Everything you write is encrypted in this page to the patient's own key.</p>
      {care ? <CareSections care={care} /> : <p class="care-loading" role="status">Connecting…</p>}
    </section>
  );
}
