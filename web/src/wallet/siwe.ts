// Sign-In with Ethereum (EIP-4361): the message the wallet signs with personal_sign. The API
// (kizuna/api/auth.py) checks its domain, URI, chain id, nonce and dates, then opens a session.

import { getAddress } from "viem";

export type SiweFields = {
  domain: string;
  address: string;
  uri: string;
  chainId: number;
  nonce: string;
  issuedAt: Date;
  expirationTime?: Date;
  statement?: string;
};

export const SIWE_STATEMENT = "Sign in to Kizuna. This signature costs nothing and cannot move funds.";

/** The EIP-4361 message text (ABNF of the EIP; the address EIP-55 checksummed). */
export function siweMessage(fields: SiweFields): string {
  const lines = [
    `${fields.domain} wants you to sign in with your Ethereum account:`,
    getAddress(fields.address),
    "",
    fields.statement ?? SIWE_STATEMENT,
    "",
    `URI: ${fields.uri}`,
    "Version: 1",
    `Chain ID: ${fields.chainId}`,
    `Nonce: ${fields.nonce}`,
    `Issued At: ${fields.issuedAt.toISOString()}`,
  ];
  if (fields.expirationTime) lines.push(`Expiration Time: ${fields.expirationTime.toISOString()}`);
  return lines.join("\n");
}
