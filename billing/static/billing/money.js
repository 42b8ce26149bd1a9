// Money as people read it — the browser twin of billing/money.py (a browser test holds the two
// to the same output). Amounts are exact: decimal strings become BigInt nano-dollars (the
// ledger keeps nine decimals), so sums never pick up float noise.

const NANOS = 1_000_000_000n;
const SIGNIFICANT = 2;

// "0.00042", "10", "0E-9", "1E+1" → nano-dollars (BigInt), or null when it isn't a number.
export function parseUsd(text) {
  if (text === null || text === undefined) return null;
  const match = /^\s*(-)?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/.exec(String(text));
  if (!match || (match[2] === "" && !match[3])) return null;
  const [, minus, whole, fraction = "", exp = "0"] = match;
  let digits = BigInt((whole || "0") + fraction);
  let scale = fraction.length - Number(exp) - 9; // digits × 10^-scale-9 USD … in nanos:
  if (scale > 0) {
    const divisor = 10n ** BigInt(scale);
    digits = (digits + divisor / 2n) / divisor; // below a nano-dollar: round half up
  } else if (scale < 0) {
    digits *= 10n ** BigInt(-scale);
  }
  return minus ? -digits : digits;
}

function groupThousands(whole) {
  return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

// Nano-dollars (BigInt) → "$10.00", "$0.00042", "-$0.12" (the rules of billing/money.py).
export function formatUsd(nanos) {
  if (nanos === null || nanos === undefined) return "unpriced";
  const sign = nanos < 0n ? "-" : "";
  let value = nanos < 0n ? -nanos : nanos;
  if (value === 0n) return "$0.00";
  if (value < NANOS) {
    const adjusted = value.toString().length - 1 - 9; // power of ten of the first digit
    const exponent = Math.min(adjusted - SIGNIFICANT + 1, -2);
    if (exponent + 9 > 0) {
      const quantum = 10n ** BigInt(exponent + 9);
      value = ((value + quantum / 2n) / quantum) * quantum;
    }
    if (value < NANOS) {
      let decimals = value.toString().padStart(9, "0").replace(/0+$/, "");
      decimals = decimals.padEnd(2, "0");
      return `${sign}$0.${decimals}`;
    }
  }
  const cents = (value + 5_000_000n) / 10_000_000n;
  const whole = (cents / 100n).toString();
  const rest = (cents % 100n).toString().padStart(2, "0");
  return `${sign}$${groupThousands(whole)}.${rest}`;
}

// The sum of decimal strings (unparseable ones skipped), formatted.
export function sumUsd(texts) {
  let total = 0n;
  for (const text of texts) {
    const nanos = parseUsd(text);
    if (nanos !== null) total += nanos;
  }
  return formatUsd(total);
}
