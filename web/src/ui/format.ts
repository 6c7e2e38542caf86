// Small formatting rules the pages share (one home each).

/** An address for people: 0x1234…abcd (the full one belongs in a title or aria-label). */
export function shortAddress(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

/** A count with its noun for people: "1 record", "2 records" (nouns whose plural adds "s"). */
export function countOf(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** A time (seconds) for people, in the browser's time zone and language: every page's dates
 *  and times, and the sentences that explain a refusal. */
export function formatTime(seconds: number): string {
  return TIME.format(new Date(seconds * 1000));
}

// One formatter, made once: toLocaleString with options builds a new Intl.DateTimeFormat on
// every call (the provider's records page spent more time there than in the record's
// decryption: every row re-rendered at each read). Same output as toLocaleString.
const TIME = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});
