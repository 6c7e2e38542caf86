// The web core's error tree, mirroring kizuna/errors.py so the page can tell the same failures
// apart as the Python side (and show `shortMessage` to people). Plain classes: erasable syntax.

export class KizunaError extends Error {
  override name = "KizunaError";
  /** One sentence for the page; `message` may carry more detail. */
  readonly shortMessage: string;

  constructor(shortMessage: string, options?: { cause?: unknown; details?: string }) {
    super(options?.details ? `${shortMessage}\n\nDetails: ${options.details}` : shortMessage, {
      cause: options?.cause,
    });
    this.shortMessage = shortMessage;
  }
}

/** Input was rejected: `field` names where, `reason` says why (kizuna.errors.InputError). */
export class InputError extends KizunaError {
  override name = "InputError";
  readonly field: string;
  readonly reason: string;

  constructor(field: string, reason: string) {
    super(field ? `${field}: ${reason}` : reason);
    this.field = field;
    this.reason = reason;
  }
}

export class CryptoError extends KizunaError {
  override name = "CryptoError";
}

/** The wallet signature does not derive keys (another signer, message, chain or contract). */
export class KeyDerivationError extends CryptoError {
  override name = "KeyDerivationError";
}

export class EnvelopeError extends CryptoError {
  override name = "EnvelopeError";
}

/** Not a (well-formed) Kizuna envelope; found before any key is needed. */
export class EnvelopeFormatError extends EnvelopeError {
  override name = "EnvelopeFormatError";
}

/** Wrong key, or the envelope was tampered with, truncated or extended. */
export class IntegrityError extends EnvelopeError {
  override name = "IntegrityError";
}

/** `error` as the page's error: a KizunaError as it is, anything else (a bug, a browser quirk)
 * as a KizunaError that says so; `afterwards` tells the user where that leaves them. */
export function toKizunaError(error: unknown, afterwards = "Nothing was sent; try again."): KizunaError {
  if (error instanceof KizunaError) return error;
  return new KizunaError(`Something unexpected went wrong in the page. ${afterwards}`, {
    cause: error, details: error instanceof Error ? error.message : String(error),
  });
}
