import { HttpServerRequest } from "@effect/platform"
import { Effect, Either, Option, ParseResult, Schema } from "effect"
import { type FieldIssue, ValidationError } from "../domain/Errors.js"
import { IdempotencyKey } from "../domain/Ids.js"
import { CreateOrderRequest } from "../domain/Order.js"

/** The largest `POST /orders` body accepted, in bytes (64 KiB). */
export const MAX_BODY_BYTES = 64 * 1024

/** `["items", 0, "qty"]` -> `items[0].qty` */
const fieldName = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`),
    ""
  ) || "body"

/** Every problem of a parse error, one per field (first message per field). */
export const fieldIssues = (error: ParseResult.ParseError): ReadonlyArray<FieldIssue> => {
  const seen = new Map<string, string>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const field = fieldName(issue.path)
    if (!seen.has(field)) seen.set(field, issue._tag === "Missing" ? "is required" : issue.message)
  }
  return [...seen].map(([field, message]) => ({ field, message }))
}

const invalid = (message: string, field: string, problem: string) =>
  new ValidationError({ message, details: [{ field, message: problem }] })

const decodeRequest = Schema.decodeUnknownEither(CreateOrderRequest, { errors: "all", onExcessProperty: "error" })
const decodeKey = Schema.decodeUnknownEither(IdempotencyKey)

/** A decoded `POST /orders`: the request and the idempotency key it carries, if any. */
export interface OrderSubmission {
  readonly request: CreateOrderRequest
  readonly idempotencyKey: Option.Option<IdempotencyKey>
}

/**
 * Reads and decodes a `POST /orders` request: JSON content type, at most `MAX_BODY_BYTES`, a body
 * that parses as JSON and decodes as `CreateOrderRequest` (every bad field reported), and the
 * `Idempotency-Key` header (preferred over the body's `idempotencyKey`; both given and different
 * is an error). Fails with `ValidationError`; reads nothing else and writes nothing.
 */
export const readOrderSubmission = (
  request: HttpServerRequest.HttpServerRequest,
  options: { readonly requireKey: boolean }
): Effect.Effect<OrderSubmission, ValidationError> =>
  Effect.gen(function* () {
    const contentType = request.headers["content-type"]?.split(";")[0]?.trim().toLowerCase() ?? ""
    if (contentType !== "application/json" && !/^application\/[a-z0-9.+-]*\+json$/.test(contentType)) {
      return yield* Effect.fail(
        invalid(
          "The body must be JSON",
          "Content-Type",
          contentType === "" ? "is required and must be application/json" : `must be application/json, not ${contentType}`
        )
      )
    }
    const declared = Number(request.headers["content-length"] ?? "0")
    if (declared > MAX_BODY_BYTES) {
      return yield* Effect.fail(invalid("The body is too large", "body", `must be at most ${MAX_BODY_BYTES} bytes`))
    }
    const text = yield* request.text.pipe(
      HttpServerRequest.withMaxBodySize(Option.some(MAX_BODY_BYTES)),
      Effect.mapError(() => invalid("The body could not be read", "body", `must be at most ${MAX_BODY_BYTES} bytes of UTF-8`))
    )
    // withMaxBodySize is honoured by the Node server only; a web Request (fromWeb) is read whole
    if (Buffer.byteLength(text, "utf8") > MAX_BODY_BYTES) {
      return yield* Effect.fail(invalid("The body is too large", "body", `must be at most ${MAX_BODY_BYTES} bytes`))
    }
    if (text.trim() === "") return yield* Effect.fail(invalid("The body is required", "body", "is required"))
    const json = yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: () => invalid("The body is not valid JSON", "body", "must be valid JSON")
    })
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      return yield* Effect.fail(invalid("The body must be a JSON object", "body", "must be a JSON object"))
    }
    const decoded = decodeRequest(json)
    if (Either.isLeft(decoded)) {
      return yield* Effect.fail(new ValidationError({ message: "The order request is invalid", details: fieldIssues(decoded.left) }))
    }
    const order = decoded.right

    const header = request.headers["idempotency-key"]
    let key = Option.fromNullable(order.idempotencyKey)
    if (header !== undefined) {
      const fromHeader = decodeKey(header)
      if (Either.isLeft(fromHeader)) {
        return yield* Effect.fail(
          new ValidationError({
            message: "The Idempotency-Key header is invalid",
            details: fieldIssues(fromHeader.left).map((i) => ({ field: "Idempotency-Key", message: i.message }))
          })
        )
      }
      if (Option.isSome(key) && key.value !== fromHeader.right) {
        return yield* Effect.fail(
          invalid("Two different idempotency keys were given", "idempotencyKey", "differs from the Idempotency-Key header")
        )
      }
      key = Option.some(fromHeader.right)
    }
    if (options.requireKey && Option.isNone(key)) {
      return yield* Effect.fail(invalid("An idempotency key is required", "Idempotency-Key", "is required"))
    }
    return { request: order, idempotencyKey: key }
  })
