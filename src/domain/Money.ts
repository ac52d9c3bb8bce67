import { BigDecimal, Either, Option, ParseResult, Schema } from "effect"

/**
 * Money in minor units: an integer number of US cents. Every sum and product on money is done
 * on these integers (exact up to 2^53 cents, far above the largest order checkout accepts:
 * 100 lines x 10,000 copies x $1,000,000), never on binary floating point.
 */
export const Cents = Schema.Int.pipe(Schema.brand("Cents"))
export type Cents = typeof Cents.Type

/** The currency every amount is in (ISO 4217). */
export const Currency = "USD" as const

/** The highest unit price checkout accepts, in cents ($1,000,000.00). */
export const MAX_UNIT_PRICE_CENTS = 100_000_000

const DECIMAL = /^\d+(\.\d+)?$/
const HUNDRED = BigDecimal.fromBigInt(100n)

/**
 * Converts a decimal amount (a `BigDecimal`) to cents. Fails with a message when it has more
 * than 2 fraction digits after normalisation (`16.990` is fine, `16.999` is not).
 */
export const decimalToCents = (amount: BigDecimal.BigDecimal): Either.Either<Cents, string> => {
  const normalized = BigDecimal.normalize(amount)
  if (normalized.scale > 2) return Either.left("must have at most 2 fraction digits")
  const cents = BigDecimal.normalize(BigDecimal.multiply(normalized, HUNDRED))
  // scale <= 0 after normalising means a whole number of cents
  const value = cents.value * 10n ** BigInt(Math.max(0, -cents.scale))
  // beyond 2^53 cents a number is not exact, and Cents.make would throw instead of failing
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    return Either.left("is too large")
  }
  return Either.right(Cents.make(Number(value)))
}

/** Formats cents as a decimal string with exactly 2 fraction digits: 1699 -> "16.99". */
export const centsToDecimalString = (cents: number): string => {
  // not BigDecimal.format: it normalises, dropping trailing zeros (1690 -> "16.9", 0 -> "0")
  const digits = BigInt(Math.abs(cents)).toString().padStart(3, "0")
  return `${cents < 0 ? "-" : ""}${digits.slice(0, -2)}.${digits.slice(-2)}`
}

/**
 * Cents as the JSON number the API speaks (at most 2 fraction digits): 1699 -> 16.99.
 * Goes through the decimal string, so no float arithmetic touches the amount.
 */
export const centsToNumber = (cents: number): number => Number(centsToDecimalString(cents))

/** Parses a plain decimal string or a finite JSON number into a `BigDecimal`. */
const parseDecimal = (input: string | number): Option.Option<BigDecimal.BigDecimal> => {
  if (typeof input === "number") {
    return Number.isFinite(input) ? BigDecimal.safeFromNumber(input) : Option.none()
  }
  const trimmed = input.trim()
  return DECIMAL.test(trimmed) ? BigDecimal.fromString(trimmed) : Option.none()
}

/**
 * A unit price as the API accepts it: a JSON number (`16.99`) or a decimal string (`"16.99"`),
 * not negative, at most 2 fraction digits, at most 1,000,000. Decodes to cents; encodes to a JSON
 * number. `16.99`, `16.990` and `"16.99"` all decode to 1699.
 */
export const UnitPrice = Schema.transformOrFail(
  Schema.Union(Schema.Number, Schema.String).annotations({
    description: "A decimal amount in USD: a JSON number or a decimal string, at most 2 fraction digits"
  }),
  Cents,
  {
    strict: true,
    decode: (input, _, ast) => {
      const parsed = parseDecimal(input)
      if (Option.isNone(parsed)) {
        return ParseResult.fail(new ParseResult.Type(ast, input, "must be a decimal number such as 16.99"))
      }
      if (BigDecimal.isNegative(parsed.value)) {
        return ParseResult.fail(new ParseResult.Type(ast, input, "must not be negative"))
      }
      return Either.match(decimalToCents(parsed.value), {
        onLeft: (message) => ParseResult.fail(new ParseResult.Type(ast, input, message)),
        onRight: (cents) =>
          cents > MAX_UNIT_PRICE_CENTS
            ? ParseResult.fail(new ParseResult.Type(ast, input, "must be at most 1000000"))
            : ParseResult.succeed(cents)
      })
    },
    encode: (cents) => ParseResult.succeed(centsToNumber(cents))
  }
)

/**
 * An amount in a response: cents in the domain, a JSON number with at most 2 fraction digits on
 * the wire (`1699` <-> `16.99`).
 */
export const Amount = Schema.transformOrFail(Schema.Number, Cents, {
  strict: true,
  decode: (input, _, ast) =>
    Option.match(BigDecimal.safeFromNumber(input), {
      onNone: () => ParseResult.fail(new ParseResult.Type(ast, input, "must be a finite number")),
      onSome: (d) =>
        Either.match(decimalToCents(d), {
          onLeft: (message) => ParseResult.fail(new ParseResult.Type(ast, input, message)),
          onRight: ParseResult.succeed
        })
    }),
  encode: (cents) => ParseResult.succeed(centsToNumber(cents))
}).annotations({ description: "A USD amount with at most 2 fraction digits" })

