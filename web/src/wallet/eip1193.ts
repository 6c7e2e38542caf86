// EIP-1193 providers (what MetaMask and every other wallet inject) and their errors, turned into
// the page's error tree so each failure gets its own message and nothing the user typed is lost.

import { KizunaError } from "../core/errors.ts";

export type RequestArguments = { method: string; params?: readonly unknown[] | object };

export interface Eip1193Provider {
  request(args: RequestArguments): Promise<unknown>;
  on?(event: string, listener: (...args: any[]) => void): void;
  removeListener?(event: string, listener: (...args: any[]) => void): void;
}

/** A wallet's error: the EIP-1193 / EIP-1474 code and message. */
export class WalletError extends KizunaError {
  override name = "WalletError";
  readonly code: number | undefined;
  constructor(shortMessage: string, code?: number, cause?: unknown) {
    super(shortMessage, { cause });
    this.code = code;
  }
}

/** The user said no in the wallet (code 4001). Nothing happened; they may try again. */
export class UserRejected extends WalletError {
  override name = "UserRejected";
}

/** The wallet is locked or this site is not connected to the account (4100). */
export class WalletLocked extends WalletError {
  override name = "WalletLocked";
}

/** The wallet is on another chain than the deployment's, and did not switch. */
export class WrongChain extends WalletError {
  override name = "WrongChain";
  readonly expected: number;
  readonly actual: number;
  constructor(expected: number, actual: number, cause?: unknown) {
    super(`Your wallet is on chain ${actual}; Kizuna here runs on chain ${expected}. Switch your wallet's network to chain ${expected}.`, undefined, cause);
    this.expected = expected;
    this.actual = actual;
  }
}

/** No wallet in this browser at all. */
export class NoWallet extends WalletError {
  override name = "NoWallet";
}

function codeOf(error: unknown): number | undefined {
  if (typeof error === "object" && error !== null) {
    const e = error as { code?: unknown; data?: { originalError?: { code?: unknown } }; cause?: unknown };
    if (typeof e.code === "number") return e.code;
    if (typeof e.data?.originalError?.code === "number") return e.data.originalError.code;
    if (e.cause) return codeOf(e.cause);
  }
  return undefined;
}

function messageOf(error: unknown): string {
  if (typeof error === "object" && error !== null && "message" in error) return String((error as { message: unknown }).message);
  return String(error);
}

/** The page's error for what a wallet threw. */
export function walletErrorOf(error: unknown): KizunaError {
  if (error instanceof KizunaError) return error;
  const code = codeOf(error);
  if (code === 4001) return new UserRejected("You declined the request in your wallet. Nothing was signed or sent; you can try again.", code, error);
  if (code === 4100) return new WalletLocked("Your wallet is locked, or this page is not connected to it. Unlock it and connect again.", code, error);
  if (code === 4900 || code === 4901) return new WalletError("Your wallet is disconnected from its network. Reconnect it, then try again.", code, error);
  if (code === -32002) return new WalletError("Your wallet already has a request waiting: open it and answer that one first.", code, error);
  return new WalletError(`Your wallet refused the request: ${messageOf(error)}`, code, error);
}

/** provider.request, with the wallet's errors turned into the page's. */
export async function walletRequest<T>(provider: Eip1193Provider, method: string, params?: readonly unknown[]): Promise<T> {
  try {
    return (await provider.request(params === undefined ? { method } : { method, params })) as T;
  } catch (error) {
    throw walletErrorOf(error);
  }
}
