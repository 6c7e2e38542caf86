// EIP-712 pieces shared by every signed statement of the page (one home, as
// kizuna/chain/eip712.py is for Python).

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
