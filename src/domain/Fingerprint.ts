import canonicalize from "canonicalize"
import { createHash } from "node:crypto"
import { centsToDecimalString } from "./Money.js"
import type { CreateOrderRequest } from "./Order.js"

/**
 * The request fingerprint: SHA-256 (hex) of the RFC 8785 canonical JSON (JCS) of the decoded
 * request `{"userId", "items": [{"bookId", "qty", "unitPrice": "16.99"}]}`. Because it is taken
 * after decoding, key order, whitespace and number spelling do not matter (`16.99`, `16.990` and
 * `"16.99"` are equal); line order does (it numbers the stock adjusts). The idempotency key itself
 * is not part of it.
 */
export const fingerprint = (request: CreateOrderRequest): string => {
  const canonical = canonicalize({
    userId: request.userId,
    items: request.items.map((line) => ({
      bookId: line.bookId.toLowerCase(),
      qty: line.qty,
      unitPrice: centsToDecimalString(line.unitPrice)
    }))
  })
  return createHash("sha256").update(canonical ?? "").digest("hex")
}
