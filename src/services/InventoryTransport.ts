import { Context, Data, Effect, Layer } from "effect"
import { Agent, type Dispatcher } from "undici"

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
 * How the inventory client sends a request: one effect per request, interruptible, bounded by the
 * request's `timeoutMs`. An interrupted GET is aborted. A POST (a stock change) is not: cut short,
 * its outcome would be unknown, so the saga runs its stock changes uninterruptibly; an interrupted
 * caller stops waiting and the POST ends at its answer or its timeout. The timeout belongs to
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

/** Thrown into undici to end a request: the deadline passed, or the effect was interrupted. */
class Aborted extends Error {}

/**
 * The live transport: undici's `Agent.dispatch` on one pooled keep-alive `Agent` (connect timeout
 * 1 s, ARCHITECTURE.md "Inventory client policy"; idle connections kept 10 s), closed with the layer.
 * `dispatch` hands the answer's chunks to a handler: no response stream and no promise per request
 * (undici's `request` cost ~85 us of CPU per call, `dispatch` ~45 us). Each request is one async
 * effect; timeouts, retries and the bulkhead are the inventory client's policy, not the transport's.
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
        // One timer per request, made when the request runs (the same effect may be run more than
        // once). The deadline, or an interruption of a GET, aborts the request through undici's
        // controller. (A POST has no canceler: a canceler costs an interruptible region per request.)
        Effect.async<InventoryResponse, InventoryTransportError>((resume) => {
          let controller: Dispatcher.DispatchController | undefined
          let abortedBy: "timeout" | "interrupt" | undefined
          let settled = false
          const abort = (why: "timeout" | "interrupt") => {
            if (settled || abortedBy !== undefined) return
            abortedBy = why
            if (controller !== undefined) controller.abort(new Aborted(why))
            // still connecting (undici hands over its controller once connected): answer the
            // deadline now; the request is aborted before it is sent if the connection comes
            else if (why === "timeout") failed(new Aborted(why))
          }
          const timer = setTimeout(() => abort("timeout"), req.timeoutMs)
          const settle = (effect: Effect.Effect<InventoryResponse, InventoryTransportError>) => {
            if (settled) return
            settled = true
            clearTimeout(timer)
            resume(effect)
          }
          const failed = (error: unknown) => {
            const timedOut = abortedBy === "timeout"
            settle(Effect.fail(
              new InventoryTransportError({
                code: timedOut ? undefined : codeOf(error),
                message: timedOut
                  ? `no answer within ${req.timeoutMs} ms`
                  : error instanceof Error ? error.message : String(error),
                timedOut
              })
            ))
          }
          let status = 0
          const chunks: Array<Buffer> = []
          try {
            const url = new URL(req.url)
            agent.dispatch({
              origin: url.origin,
              path: url.pathname + url.search,
              method: req.method,
              headers: req.headers,
              body: req.body ?? null
            }, {
              onRequestStart: (c) => {
                controller = c
                if (abortedBy !== undefined) c.abort(new Aborted(abortedBy))
              },
              onResponseStart: (_c, statusCode) => {
                status = statusCode
                chunks.length = 0
              },
              onResponseData: (_c, chunk) => void chunks.push(chunk),
              onResponseEnd: () => {
                const first = chunks[0]
                const text = chunks.length === 1 && first !== undefined ? first.toString("utf8") : Buffer.concat(chunks).toString("utf8")
                settle(Effect.succeed({ status, body: parseJson(text) }))
              },
              onResponseError: (_c, error) => failed(error)
            })
          } catch (error) {
            failed(error)
          }
          return req.method === "GET" ? Effect.sync(() => abort("interrupt")) : undefined
        })
    })
  )
)
