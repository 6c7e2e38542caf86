// Small formatting rules the pages share (one home each).

/** An address for people: 0x1234…abcd (the full one belongs in a title or aria-label). */
export function shortAddress(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

/** A time (seconds) for people, in the browser's time zone and language: every page's dates
 *  and times, and the sentences that explain a refusal. */
export function formatTime(seconds: number): string {
  return new Date(seconds * 1000).toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}
