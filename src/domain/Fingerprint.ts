import { createHash } from "node:crypto"
import { centsToDecimalString } from "./Money.js"
import type { CreateOrderRequest } from "./Order.js"

/** A JSON value as the fingerprint canonicalises it. */
export type Canonicalizable = string | number | boolean | null | ReadonlyArray<Canonicalizable> | { readonly [key: string]: Canonicalizable }

const isArray = (value: Canonicalizable): value is ReadonlyArray<Canonicalizable> => Array.isArray(value)

/**
 * RFC 8785 (JSON Canonicalization Scheme) for the values checkout fingerprints: object keys
 * sorted by UTF-16 code units, no whitespace, strings escaped and numbers written as ECMAScript's
 * `JSON.stringify` does (which is what RFC 8785 prescribes). Non-finite numbers are rejected.
 */
export const canonicalJson = (value: Canonicalizable): string => {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new RangeError("RFC 8785 has no representation for non-finite numbers")
    return JSON.stringify(value)
  }
  if (isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  const entries = Object.keys(value)
    .sort() // default sort compares UTF-16 code units, as RFC 8785 section 3.2.3 requires
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key] ?? null)}`)
  return `{${entries.join(",")}}`
}

/**
 * The request fingerprint: SHA-256 (hex) of the RFC 8785 canonical JSON of the decoded request
 * `{"userId", "items": [{"bookId", "qty", "unitPrice": "16.99"}]}`. Because it is taken after
 * decoding, key order, whitespace and number spelling do not matter (`16.99`, `16.990` and
 * `"16.99"` are equal); line order does (it numbers the stock adjusts). The idempotency key itself
 * is not part of it.
 */
export const fingerprint = (request: CreateOrderRequest): string =>
  createHash("sha256")
    .update(
      canonicalJson({
        userId: request.userId,
        items: request.items.map((line) => ({
          bookId: line.bookId.toLowerCase(),
          qty: line.qty,
          unitPrice: centsToDecimalString(line.unitPrice)
        }))
      })
    )
    .digest("hex")
