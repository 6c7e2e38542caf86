// The QR code of a SMART Health Link, drawn in the page (no service, no CDN): lean-qr (MIT,
// loaded only when a link is made, so the first load does not carry it). The code holds what
// `kizuna patient share` prints and saves (segno.make(uri, error="m")): the whole `shlink:/`
// URI in byte mode, error correction at least M (raised while the smallest version that holds
// it stays the same), so it has the CLI's size; the mask lean-qr chooses may differ from
// segno's. tests/web/qr_check.py decodes the drawn code (zxing-cpp) and checks its size.

export type QrSymbol = {
  /** Modules per side, without the quiet zone. */
  size: number;
  /** One SVG path of the dark modules, in module units (1 × 1 squares). */
  path: string;
};

/** The QR symbol of `text` (a `shlink:/` URI). */
export async function qrSymbol(text: string): Promise<QrSymbol> {
  const { generate, correction, mode } = await import("lean-qr");
  const code = generate(mode.bytes(new TextEncoder().encode(text)), { minCorrectionLevel: correction.M });
  const parts: string[] = [];
  for (let y = 0; y < code.size; y += 1) {
    for (let x = 0; x < code.size; x += 1) {
      // A run of dark modules is one rectangle: a smaller path than a square each.
      if (!code.get(x, y)) continue;
      let run = 1;
      while (x + run < code.size && code.get(x + run, y)) run += 1;
      parts.push(`M${x} ${y}h${run}v1h-${run}z`);
      x += run - 1;
    }
  }
  return { size: code.size, path: parts.join("") };
}

/** The quiet zone around the symbol, in modules (ISO/IEC 18004: 4; segno's `border=4`). */
export const QUIET_ZONE = 4;
