// EIP-712 pieces shared by every signed statement of the page (one home, as
// kizuna/chain/eip712.py is for Python).

import type { TypedDataDefinition } from "viem";

/** The domain's fields, in the order every Kizuna domain uses. */
export const EIP712_DOMAIN_FIELDS = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
] as const;

export type TypedField = { readonly name: string; readonly type: string };

/** The proxy's domain: statements the service checks itself (scope keys, inbox keys, ...),
 * bound to the chain and the AccessLog contract. */
export const PROXY_DOMAIN_NAME = "Kizuna Proxy";
export const PROXY_DOMAIN_VERSION = "1";

/** A statement in the proxy's domain, as the wallet signs it (eth_signTypedData_v4). */
export function proxyTypedData(o: {
  primaryType: string;
  fields: readonly TypedField[];
  chainId: number;
  accessLog: string;
  message: Record<string, unknown>;
}): object {
  return {
    types: { EIP712Domain: EIP712_DOMAIN_FIELDS, [o.primaryType]: o.fields },
    primaryType: o.primaryType,
    domain: { name: PROXY_DOMAIN_NAME, version: PROXY_DOMAIN_VERSION, chainId: o.chainId, verifyingContract: o.accessLog },
    message: o.message,
  };
}

export type JsonTypedData = {
  types: Record<string, readonly TypedField[]>;
  primaryType: string;
  domain: Record<string, unknown>;
  message: Record<string, unknown>;
};

/** An eth_signTypedData_v4 JSON document as viem hashes and signs it (integers as bigint):
 * for signing with a local key (tests, benchmarks) and recovering signers. */
export function forViem(typed: JsonTypedData): TypedDataDefinition {
  const convert = (type: string, value: unknown): unknown => {
    if (type.endsWith("[]")) return (value as unknown[]).map((item) => convert(type.slice(0, -2), item));
    if (/^u?int\d*$/.test(type)) return BigInt(value as string | number);
    const struct = typed.types[type];
    if (struct) return Object.fromEntries(struct.map((f) => [f.name, convert(f.type, (value as Record<string, unknown>)[f.name])]));
    return value;
  };
  return {
    types: typed.types,
    primaryType: typed.primaryType,
    domain: convert("EIP712Domain", typed.domain),
    message: convert(typed.primaryType, typed.message),
  } as unknown as TypedDataDefinition;
}
