// The committed cross-language vectors, read from tests/vectors/ (Python writes them).
import { readFileSync } from "node:fs";

export const root = new URL("../../", import.meta.url);

export type WalletVector = {
  label: string;
  private_key: `0x${string}`;
  account: `0x${string}`;
  typed_data: {
    types: Record<string, { name: string; type: string }[]>;
    primaryType: string;
    domain: { name: string; version: string; chainId: number; verifyingContract: `0x${string}` };
    message: { purpose: string; account: `0x${string}` };
  };
  digest: `0x${string}`;
  signature: `0x${string}`;
  umbral_public_key: string;
  umbral_verifying_key: string;
  scope_ids: Record<string, `0x${string}`>;
  scope_delegating_keys: Record<string, string>;
  scope_delegating_keys_by_epoch: Record<string, Record<string, string>>;
};

export const walletSpec = JSON.parse(
  readFileSync(new URL("tests/vectors/wallet_keys.json", root), "utf8"),
) as { hkdf: Record<string, string>; vectors: WalletVector[] };
