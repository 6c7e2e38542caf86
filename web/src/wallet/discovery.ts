// Finding the wallets in this browser: EIP-6963 (each wallet announces itself with a name and an
// icon, so the page can offer a picker when there are several), and the legacy
// `window.ethereum` when none announces.

import type { Eip1193Provider } from "./eip1193.ts";

export type WalletInfo = { uuid: string; name: string; icon: string; rdns: string };
export type DiscoveredWallet = { info: WalletInfo; provider: Eip1193Provider };

type AnnounceEvent = CustomEvent<{ info?: Partial<WalletInfo>; provider?: Eip1193Provider }>;

const SAFE_ICON = /^data:image\/(png|svg\+xml|webp|jpeg|gif);base64,[A-Za-z0-9+/=]+$/;

function wellFormed(detail: AnnounceEvent["detail"] | undefined): DiscoveredWallet | null {
  const info = detail?.info;
  const provider = detail?.provider;
  if (!info || !provider || typeof provider.request !== "function") return null;
  if (typeof info.uuid !== "string" || typeof info.name !== "string" || typeof info.rdns !== "string") return null;
  // The icon is shown in an <img>; only data: images (EIP-6963 requires them) are accepted.
  const icon = typeof info.icon === "string" && SAFE_ICON.test(info.icon) ? info.icon : "";
  return { info: { uuid: info.uuid, name: info.name.slice(0, 60), icon, rdns: info.rdns }, provider };
}

/** Listen for wallets; `onChange` gets the full list each time one announces itself. */
export function watchWallets(target: Window, onChange: (wallets: DiscoveredWallet[]) => void): () => void {
  const byUuid = new Map<string, DiscoveredWallet>();
  const listener = (event: Event) => {
    const found = wellFormed((event as AnnounceEvent).detail);
    if (!found || byUuid.has(found.info.uuid)) return;
    byUuid.set(found.info.uuid, found);
    onChange([...byUuid.values()]);
  };
  target.addEventListener("eip6963:announceProvider", listener);
  target.dispatchEvent(new Event("eip6963:requestProvider"));
  return () => target.removeEventListener("eip6963:announceProvider", listener);
}

/** The legacy injected provider, as a wallet of the list (when no wallet announced itself). */
export function legacyWallet(target: Window): DiscoveredWallet | null {
  const injected = (target as unknown as { ethereum?: Eip1193Provider & { isMetaMask?: boolean } }).ethereum;
  if (!injected || typeof injected.request !== "function") return null;
  return {
    info: { uuid: "legacy-window-ethereum", name: injected.isMetaMask ? "MetaMask" : "Browser wallet", icon: "", rdns: "window.ethereum" },
    provider: injected,
  };
}
