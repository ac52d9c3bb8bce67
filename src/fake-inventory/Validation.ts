/**
 * Request validation the way the real inventory service's framework (FastAPI + pydantic v2) does
 * it: every fault of the request becomes one entry of a 422 `{"detail": [...]}` body
 * (INVENTORY_CONTRACT.md: "A non-UUID id in a path or query parameter is rejected ... with 422").
 */
import { Either, ParseResult } from "effect"

/** One entry of a 422 body's `detail` list, shaped like pydantic's error dicts. */
export interface FieldError {
  readonly type: string
  readonly loc: ReadonlyArray<string | number>
  readonly msg: string
  readonly input: unknown
  readonly ctx?: Readonly<Record<string, unknown>>
}

const hyphenated = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const simple = /^[0-9a-f]{32}$/i
const groupLengths = [8, 4, 4, 4, 12] as const

/** Why `body` (the id without `urn:uuid:` or braces) is not a UUID, in pydantic's words. */
const uuidProblem = (body: string, offset: number): string => {
  for (let i = 0; i < body.length; i++) {
    const ch = body.charAt(i)
    if (!/[0-9a-fA-F-]/.test(ch)) {
      return `invalid character: expected an optional prefix of \`urn:uuid:\` followed by [0-9a-fA-F-], found \`${ch}\` at ${i + offset + 1}`
    }
  }
  if (!body.includes("-")) return `invalid length: expected length 32 for simple format, found ${body.length}`
  const groups = body.split("-")
  if (groups.length !== 5) return `invalid group count: expected 5, found ${groups.length}`
  for (const [i, group] of groups.entries()) {
    const expected = groupLengths[i] ?? 0
    if (group.length !== expected) return `invalid group length in group ${i}: expected ${expected}, found ${group.length}`
  }
  return "invalid format"
}

/**
 * Parses a UUID as pydantic does (hyphenated, 32 hex digits, `urn:uuid:` prefix or braces, any
 * case). Right: the canonical lower-case hyphenated form the service stores and answers with.
 * Left: the reason, for the 422 message.
 */
export const parseUuid = (raw: string): Either.Either<string, string> => {
  let body = raw
  let offset = 0
  if (body.toLowerCase().startsWith("urn:uuid:")) {
    body = body.slice(9)
    offset = 9
  } else if (body.startsWith("{") && body.endsWith("}")) {
    body = body.slice(1, -1)
    offset = 1
  }
  if (hyphenated.test(body)) return Either.right(body.toLowerCase())
  if (simple.test(body)) {
    const h = body.toLowerCase()
    return Either.right(`${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`)
  }
  return Either.left(uuidProblem(body, offset))
}

/** A required field that is absent: pydantic's `missing` error at `loc`. */
export const missing = (loc: ReadonlyArray<string | number>, input: unknown = null): FieldError => ({
  type: "missing",
  loc,
  msg: "Field required",
  input
})

/**
 * Validates a required UUID parameter at `loc` (e.g. `["path", "book_id"]`). Right: the canonical
 * id. Left: the `uuid_parsing` (or `missing`) error for the 422 body.
 */
export const uuidParam = (
  loc: ReadonlyArray<string | number>,
  raw: string | undefined
): Either.Either<string, FieldError> => {
  if (raw === undefined) return Either.left(missing(loc))
  return Either.mapLeft(parseUuid(raw), (reason) => ({
    type: "uuid_parsing",
    loc,
    msg: `Input should be a valid UUID, ${reason}`,
    input: raw,
    ctx: { error: reason }
  }))
}

/**
 * Validates an integer query parameter `name` with FastAPI's `Query(default, ge=, le=)` rules.
 * `raw` undefined gives `fallback`. Left: `int_parsing`, `greater_than_equal` or
 * `less_than_equal`, as pydantic reports them.
 */
export const intQuery = (
  name: string,
  raw: string | undefined,
  fallback: number,
  bounds: { readonly ge: number; readonly le?: number }
): Either.Either<number, FieldError> => {
  if (raw === undefined) return Either.right(fallback)
  const loc = ["query", name]
  if (!/^\s*[+-]?\d+\s*$/.test(raw)) {
    return Either.left({
      type: "int_parsing",
      loc,
      msg: "Input should be a valid integer, unable to parse string as an integer",
      input: raw
    })
  }
  const value = Number.parseInt(raw, 10)
  if (value < bounds.ge) {
    return Either.left({
      type: "greater_than_equal",
      loc,
      msg: `Input should be greater than or equal to ${bounds.ge}`,
      input: raw,
      ctx: { ge: bounds.ge }
    })
  }
  if (bounds.le !== undefined && value > bounds.le) {
    return Either.left({
      type: "less_than_equal",
      loc,
      msg: `Input should be less than or equal to ${bounds.le}`,
      input: raw,
      ctx: { le: bounds.le }
    })
  }
  return Either.right(value)
}

/** The adjust request body after validation (INVENTORY_CONTRACT.md, POST /adjust). */
export interface AdjustBody {
  readonly quantity_change: number
  readonly notes: string | null
}

/** Maximum length of `notes` on an adjust (INVENTORY_CONTRACT.md: "string up to 500 chars"). */
export const maxNotesLength = 500

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** pydantic's lax `int`: integers, integral floats, booleans and integer strings. */
const laxInt = (loc: ReadonlyArray<string | number>, input: unknown): Either.Either<number, FieldError> => {
  if (typeof input === "boolean") return Either.right(input ? 1 : 0)
  if (typeof input === "number") {
    if (Number.isInteger(input)) return Either.right(input)
    if (Number.isFinite(input)) {
      return Either.left({
        type: "int_from_float",
        loc,
        msg: "Input should be a valid integer, got a number with a fractional part",
        input
      })
    }
  }
  if (typeof input === "string") {
    if (/^\s*[+-]?\d+\s*$/.test(input)) return Either.right(Number.parseInt(input, 10))
    return Either.left({
      type: "int_parsing",
      loc,
      msg: "Input should be a valid integer, unable to parse string as an integer",
      input
    })
  }
  return Either.left({ type: "int_type", loc, msg: "Input should be a valid integer", input })
}

/**
 * Validates the raw text of an adjust body: `{"quantity_change": int, "notes"?: string <= 500}`,
 * extra fields ignored, `quantity_change: 0` accepted (the contract says the service records it as
 * an `adjustment`). Left: every field error, for a 422 body.
 */
export const adjustBody = (text: string): Either.Either<AdjustBody, ReadonlyArray<FieldError>> => {
  if (text.trim() === "") return Either.left([missing(["body"])])
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return Either.left([{
      type: "json_invalid",
      loc: ["body", 0],
      msg: "JSON decode error",
      input: {},
      ctx: { error: error instanceof Error ? error.message : "Expecting value" }
    }])
  }
  if (!isRecord(parsed)) {
    return Either.left([{
      type: "model_attributes_type",
      loc: ["body"],
      msg: "Input should be a valid dictionary or object to extract fields from",
      input: parsed
    }])
  }
  const errors: Array<FieldError> = []
  let quantityChange = 0
  if (!("quantity_change" in parsed)) {
    errors.push(missing(["body", "quantity_change"], parsed))
  } else {
    Either.match(laxInt(["body", "quantity_change"], parsed["quantity_change"]), {
      onLeft: (e) => errors.push(e),
      onRight: (n) => {
        quantityChange = n
      }
    })
  }
  let notes: string | null = null
  const rawNotes = parsed["notes"]
  if (rawNotes !== undefined && rawNotes !== null) {
    if (typeof rawNotes !== "string") {
      errors.push({ type: "string_type", loc: ["body", "notes"], msg: "Input should be a valid string", input: rawNotes })
    } else if ([...rawNotes].length > maxNotesLength) {
      // Python counts code points, not UTF-16 units
      errors.push({
        type: "string_too_long",
        loc: ["body", "notes"],
        msg: `String should have at most ${maxNotesLength} characters`,
        input: rawNotes,
        ctx: { max_length: maxNotesLength }
      })
    } else {
      notes = rawNotes
    }
  }
  if (errors.length > 0) return Either.left(errors)
  return Either.right({ quantity_change: quantityChange, notes })
}

/** A Schema decode failure as short `path: problem` lines joined by "; " (for admin 400s and config errors). */
export const describeParseError = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => `${issue.path.length === 0 ? "(root)" : issue.path.join(".")}: ${issue.message}`)
    .join("; ")
