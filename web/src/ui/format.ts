// Small formatting rules the pages share (one home each).

/** An address for people: 0x1234…abcd (the full one belongs in a title or aria-label). */
export function shortAddress(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}
