import { Context, Data, Effect, Layer } from "effect"
import { Agent, request } from "undici"

/** One HTTP request to the inventory, as the inventory client builds it. */
export interface InventoryRequest {
  readonly method: "GET" | "POST"
  /** Absolute URL, query string included. */
  readonly url: string
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>
  /** A JSON body (POST), already serialised. */
  readonly body?: string
  /** Give up waiting for the whole answer after this many milliseconds (`timedOut` failure). */
  readonly timeoutMs: number
}

/** The inventory's answer: the HTTP status and the body parsed as JSON (`null` when it is not JSON). */
export interface InventoryResponse {
  readonly status: number
  readonly body: unknown
}

/**
 * The request never got an answer: it timed out (`timedOut`), or the connection was refused, reset
 * or broke while reading. `code` is the system or undici error code (`ECONNREFUSED`, `ECONNRESET`,
 * `UND_ERR_SOCKET`, ...) when there is one; the inventory client's policy decides from it whether
 * the request may have reached the service.
 */
export class InventoryTransportError extends Data.TaggedError("InventoryTransportError")<{
  readonly code: string | undefined
  readonly message: string
  readonly timedOut: boolean
}> {}

/**
 * How the inventory client sends a request: one effect per request, interruptible (an
 * interrupted request is aborted), bounded by the request's `timeoutMs`. The timeout belongs to
 * the transport so that it costs a timer, not a race of fibers. Tests swap in a scripted
 * transport (timing out by Effect's `Clock`); production uses `UndiciInventoryTransport`.
 */
export class InventoryTransport extends Context.Tag("bookverse/InventoryTransport")<
  InventoryTransport,
  { readonly send: (request: InventoryRequest) => Effect.Effect<InventoryResponse, InventoryTransportError> }
>() {}

const codeOf = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    if ("code" in current && typeof current.code === "string") return current.code
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

const parseJson = (text: string): unknown => {
  if (text === "") return null
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}

/**
 * The live transport: undici's `request` on one pooled keep-alive `Agent` (connect timeout 1 s,
 * ARCHITECTURE.md "Inventory client policy"; idle connections kept 10 s), closed with the layer.
 * Each request is one promise, so a call costs one effect, not a stream of them; timeouts,
 * retries and the bulkhead are the inventory client's policy, not the transport's.
 */
export const UndiciInventoryTransport: Layer.Layer<InventoryTransport> = Layer.scoped(
  InventoryTransport,
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => new Agent({ connect: { timeout: 1_000 }, keepAliveTimeout: 10_000, pipelining: 1 })),
      (agent) => Effect.promise(() => agent.destroy())
    ),
    (agent) => ({
      send: (req: InventoryRequest) =>
        // One AbortController and one timer per request, both made when the request runs (the same
        // effect may be run more than once); AbortSignal.timeout and AbortSignal.any cost several
        // times more. Interrupting the effect aborts the request.
        Effect.async<InventoryResponse, InventoryTransportError>((resume) => {
          const controller = new AbortController()
          let timedOut = false
          const timer = setTimeout(() => {
            timedOut = true
            controller.abort()
          }, req.timeoutMs)
          const failed = (error: unknown) => {
            clearTimeout(timer)
            resume(
              Effect.fail(
                new InventoryTransportError({
                  code: timedOut ? undefined : codeOf(error),
                  message: timedOut
                    ? `no answer within ${req.timeoutMs} ms`
                    : error instanceof Error ? error.message : String(error),
                  timedOut
                })
              )
            )
          }
          request(req.url, {
            method: req.method,
            headers: req.headers,
            body: req.body ?? null,
            dispatcher: agent,
            signal: controller.signal
          }).then(
            (response) =>
              response.body.text().then((text) => {
                clearTimeout(timer)
                resume(Effect.succeed({ status: response.statusCode, body: parseJson(text) }))
              }, failed),
            failed
          )
          return Effect.sync(() => {
            clearTimeout(timer)
            controller.abort()
          })
        })
    })
  )
)
