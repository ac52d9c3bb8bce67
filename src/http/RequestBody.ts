import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { IncomingMessage } from "node:http"
import { Effect, Either, Option, ParseResult, Schema } from "effect"
import { type FieldIssue, ValidationError } from "../domain/Errors.js"
import { IdempotencyKey } from "../domain/Ids.js"
import { CreateOrderRequest, MAX_LINES } from "../domain/Order.js"

/** The largest `POST /orders` body accepted, in bytes (64 KiB). */
export const MAX_BODY_BYTES = 64 * 1024

/**
 * The most bytes of an order's body that are read (1 MiB): past it, with or without a
 * `Content-Length`, the read fails and the connection is closed. Well above `MAX_BODY_BYTES`, so
 * that a body a little too large is read and answered 400.
 */
const READ_LIMIT_BYTES = 16 * MAX_BODY_BYTES

/** `["items", 0, "qty"]` -> `items[0].qty` */
const fieldName = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`),
    ""
  ) || "body"

/** The most fields one validation error lists. */
export const MAX_FIELD_ISSUES = 50

/**
 * Every problem of a parse error, one per field (its first message), at most `MAX_FIELD_ISSUES`
 * and then a count of the rest. A default message quotes the offending value; one too large to
 * quote (formatting it overflows) is replaced by "has an invalid value".
 */
export const fieldIssues = (error: ParseResult.ParseError): ReadonlyArray<FieldIssue> => {
  const seen = new Map<string, string>()
  let issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>
  try {
    issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  } catch {
    return [{ field: "body", message: "has an invalid value" }]
  }
  for (const issue of issues) {
    const field = fieldName(issue.path)
    if (!seen.has(field)) seen.set(field, issue._tag === "Missing" ? "is required" : issue.message)
  }
  const all = [...seen].map(([field, message]) => ({ field, message }))
  // a body full of bad fields is answered with the first MAX_FIELD_ISSUES, and a count of the rest
  return all.length <= MAX_FIELD_ISSUES
    ? all
    : [...all.slice(0, MAX_FIELD_ISSUES), { field: "body", message: `has ${all.length - MAX_FIELD_ISSUES} more invalid fields` }]
}

/** How deeply a request body may nest (a valid order nests 3 levels). */
const MAX_DEPTH = 16

/** Whether `value` nests deeper than `limit` arrays/objects (checked without recursion). */
const nestsDeeperThan = (value: unknown, limit: number): boolean => {
  const stack: Array<readonly [unknown, number]> = [[value, 0]]
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [node, depth] = next
    if (typeof node !== "object" || node === null) continue
    if (depth >= limit) return true
    for (const child of Object.values(node)) stack.push([child, depth + 1])
  }
  return false
}

const invalid = (message: string, field: string, problem: string) =>
  new ValidationError({ message, details: [{ field, message: problem }] })

/**
 * The body of a Node request as UTF-8 text, in one wait: fails (and destroys the request, which
 * closes its connection) once more than `READ_LIMIT_BYTES` have come, or with the stream's error.
 * Unlike the platform's `NodeStream.toString` (an acquire-use-release region around the read, ~10
 * Effect steps per request), it has no release step: past the limit or on an error the request is
 * destroyed here, and a request whose client hung up is closed by Node itself.
 */
const readNodeBody = (source: IncomingMessage): Effect.Effect<string, unknown> =>
  Effect.async<string, unknown>((resume) => {
    const chunks: Array<Buffer> = []
    let bytes = 0
    const settle = (outcome: Effect.Effect<string, unknown>) => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
      resume(outcome)
    }
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > READ_LIMIT_BYTES) {
        settle(Effect.fail(new Error(`the body is longer than ${READ_LIMIT_BYTES} bytes`)))
        source.destroy()
      } else {
        chunks.push(chunk)
      }
    }
    const onEnd = () => settle(Effect.succeed(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")))
    const onError = (error: Error) => settle(Effect.fail(error))
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
  })

/**
 * A request's body as UTF-8 text, at most `READ_LIMIT_BYTES` (past it the read fails and the
 * connection is closed). Read straight off Node's request when there is one (`readNodeBody`); the
 * platform's `request.text` memoizes the read in a fiber of its own, work that a body read once
 * does not need (a fiber run, a deferred and a diff of every fiber ref per request: ~1.5% of the
 * api's CPU at 1-line@32). Any other request: `request.text`, with the same limit.
 */
const bodyText = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<string, unknown> => {
  const source = request.source
  return source instanceof IncomingMessage
    ? readNodeBody(source)
    : request.text.pipe(HttpServerRequest.withMaxBodySize(Option.some(READ_LIMIT_BYTES)))
}

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
 * is an error). Fails with `ValidationError`; reads nothing else and writes nothing. At most
 * `READ_LIMIT_BYTES` of the body are read.
 */
export const readOrderSubmission = (
  request: HttpServerRequest.HttpServerRequest,
  options: { readonly requireKey: boolean }
): Effect.Effect<OrderSubmission, ValidationError> =>
  Effect.gen(function* () {
    // (the platform builds the headers object anew at every read of `request.headers`)
    const headers = request.headers
    const [mediaType, ...parameters] = (headers["content-type"] ?? "").split(";")
    const contentType = mediaType?.trim().toLowerCase() ?? ""
    const charset = parameters
      .map((p) => p.trim().toLowerCase())
      .find((p) => p.startsWith("charset="))
      ?.slice("charset=".length)
      .replace(/"/g, "")
    if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
      return yield* Effect.fail(invalid("The body must be UTF-8 JSON", "Content-Type", `charset must be utf-8, not ${charset}`))
    }
    if (contentType !== "application/json" && !/^application\/[a-z0-9.+-]*\+json$/.test(contentType)) {
      return yield* Effect.fail(
        invalid(
          "The body must be JSON",
          "Content-Type",
          contentType === "" ? "is required and must be application/json" : `must be application/json, not ${contentType}`
        )
      )
    }
    const declared = Number(headers["content-length"] ?? "0")
    if (declared > MAX_BODY_BYTES) {
      return yield* Effect.fail(invalid("The body is too large", "body", `must be at most ${MAX_BODY_BYTES} bytes`))
    }
    // A body past READ_LIMIT_BYTES fails the read and its connection is closed, so that no answer
    // can be sent; our own limit is checked once the body is read.
    const text = yield* bodyText(request).pipe(
      Effect.mapError(() => invalid("The body could not be read", "body", `must be at most ${MAX_BODY_BYTES} bytes of UTF-8`))
    )
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
    if (nestsDeeperThan(json, MAX_DEPTH)) {
      return yield* Effect.fail(invalid("The body nests too deeply", "body", `must not nest deeper than ${MAX_DEPTH} levels`))
    }
    // more lines than an order may have: said at once, before every line is decoded (a 64 KiB body
    // holds ~6,000 small lines, whose field-by-field report would be ~1.5 MB and take ~0.5 s)
    const items: unknown = "items" in json ? json.items : undefined
    if (Array.isArray(items) && items.length > MAX_LINES) {
      return yield* Effect.fail(invalid("The order request is invalid", "items", `must have at most ${MAX_LINES} lines`))
    }
    const decoded = decodeRequest(json)
    if (Either.isLeft(decoded)) {
      return yield* Effect.fail(new ValidationError({ message: "The order request is invalid", details: fieldIssues(decoded.left) }))
    }
    const order = decoded.right

    const header = headers["idempotency-key"]
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
