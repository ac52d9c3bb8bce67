/**
 * The fake inventory's HTTP server and the Layer that runs it. The inventory routes follow
 * INVENTORY_CONTRACT.md exactly; the admin routes (`/__faults`, `/__stats`, `/__requests`,
 * `/__stock`) exist only when faults are enabled, and are not part of the contract.
 *
 * The request path is a plain `node:http` listener over synchronous route functions: the fake
 * stands in for another service in tests and benchmarks, so its own cost per request should not
 * show in what they measure (on `@effect/platform`'s server it cost ~0.4 ms of CPU per request,
 * most of a 5-line order's latency at one connection). Effect runs its lifecycle (the Layer).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { Context, Effect, Either, Layer, Runtime, Schema } from "effect"
import { demoCatalog, Price, type SeedBook } from "./Catalog.js"
import { defaultHangMs, type Fault, FaultInjector, FaultRule, type RouteName } from "./Faults.js"
import { Stats } from "./Stats.js"
import { InventoryStore, naiveUtc } from "./Store.js"
import { adjustBody, describeParseError, type FieldError, intQuery, parseUuid, uuidParam } from "./Validation.js"

/** Default and maximum `per_page` of the list routes (the real service's `Query(20, ge=1, le=100)`). */
export const defaultPerPage = 20
/** @see defaultPerPage */
export const maxPerPage = 100

/** What the app serves from: its state, and the switches read at start-up. */
export interface AppEnv {
  readonly store: InventoryStore
  readonly stats: Stats
  /** The fault rules; undefined when faults are disabled (admin routes then answer 404). */
  readonly faults: FaultInjector | undefined
  /** When set, POST adjust requires `Authorization: Bearer <requireToken>`. */
  readonly requireToken: string | undefined
  /** Start time (epoch milliseconds) for `/health`'s `uptime`. */
  readonly startedAt: number
}

/** An answer: status, JSON body, extra headers. */
interface Answer {
  readonly status: number
  readonly body: unknown
  readonly headers?: Readonly<Record<string, string>>
}

/** What a route reads of its request: path parameter, query and body text (empty for a GET). */
interface Exchange {
  readonly request: IncomingMessage
  readonly param: string | undefined
  readonly query: URLSearchParams
  readonly body: string
}

const json = (body: unknown, status = 200): Answer => ({ status, body })

/** `{"detail": text}` with `status`, the service's error body. */
const detail = (status: number, text: string): Answer => json({ detail: text }, status)

/** 422 `{"detail": [field errors]}`, the framework's validation failure. */
const unprocessable = (errors: ReadonlyArray<FieldError>): Answer => json({ detail: errors }, 422)

const notFound = detail(404, "Not Found")

const statusDetails: Readonly<Record<number, string>> = {
  400: "Bad request",
  401: "Authentication required",
  404: "Not Found",
  500: "Internal server error",
  502: "Bad gateway",
  503: "Service unavailable",
  504: "Gateway timeout"
}

/** Starlette takes the last value of a repeated query parameter. */
const queryParam = (query: URLSearchParams, name: string): string | undefined => query.getAll(name).at(-1)

const lefts = <A, E>(...results: ReadonlyArray<Either.Either<A, E>>): Array<E> =>
  results.flatMap((r) => (Either.isLeft(r) ? [r.left] : []))

/** `Authorization: Bearer <token>` (scheme case-insensitive), as a service token is checked. */
const hasBearer = (header: string | undefined, token: string): boolean => {
  const match = header?.match(/^\s*bearer\s+(\S+)\s*$/i)
  return match?.[1] === token
}

/** An inventory route: its name (for stats and fault rules), the book it is about, and its answer. */
interface InventoryRoute {
  readonly name: RouteName
  /** Read from the path or the query only: the fault is picked before the body is read. */
  readonly bookIdOf: (exchange: Omit<Exchange, "body">) => string | undefined
  readonly serve: (exchange: Exchange) => Answer
}

/** The contract's inventory routes (INVENTORY_CONTRACT.md), served from `env`. */
const inventoryRoutes = (env: AppEnv) => {
  const none = () => undefined
  const pageParams = (query: URLSearchParams) => ({
    page: intQuery("page", queryParam(query, "page"), 1, { ge: 1 }),
    perPage: intQuery("per_page", queryParam(query, "per_page"), defaultPerPage, { ge: 1, le: maxPerPage })
  })

  const getStock: InventoryRoute = {
    name: "getStock",
    bookIdOf: (x) => x.param,
    serve: (x) =>
      Either.match(uuidParam(["path", "book_id"], x.param), {
        onLeft: (error) => unprocessable([error]),
        onRight: (bookId) => {
          const view = env.store.stock(bookId)
          return view === undefined ? detail(404, "Inventory record not found") : json(view)
        }
      })
  }

  const adjust: InventoryRoute = {
    name: "adjust",
    bookIdOf: (x) => queryParam(x.query, "book_id"),
    serve: (x) => {
      if (env.requireToken !== undefined && !hasBearer(x.request.headers["authorization"], env.requireToken)) {
        return { ...detail(401, "Authentication required"), headers: { "www-authenticate": "Bearer" } }
      }
      const bookId = uuidParam(["query", "book_id"], queryParam(x.query, "book_id"))
      const body = adjustBody(x.body)
      if (Either.isLeft(bookId) || Either.isLeft(body)) {
        return unprocessable([...lefts(bookId), ...(Either.isLeft(body) ? body.left : [])])
      }
      const outcome = env.store.adjust(bookId.right, body.right.quantity_change, body.right.notes)
      return outcome._tag === "Applied"
        ? json(outcome.transaction)
        : detail(400, "Invalid adjustment - would result in negative inventory")
    }
  }

  const transactions: InventoryRoute = {
    name: "transactions",
    bookIdOf: (x) => queryParam(x.query, "book_id"),
    serve: (x) => {
      const { page, perPage } = pageParams(x.query)
      const raw = queryParam(x.query, "book_id")
      const bookId = raw === undefined ? Either.right(undefined) : uuidParam(["query", "book_id"], raw)
      if (Either.isLeft(page) || Either.isLeft(perPage) || Either.isLeft(bookId)) {
        return unprocessable(lefts<unknown, FieldError>(page, perPage, bookId))
      }
      const result = env.store.transactions(bookId.right, page.right, perPage.right)
      return json({ transactions: result.items, pagination: result.pagination })
    }
  }

  // The brief names the list `items`; the real service calls it `inventory`. Both are served so a
  // client written against either works (extra fields are allowed by the contract).
  const list: InventoryRoute = {
    name: "list",
    bookIdOf: none,
    serve: (x) => {
      const { page, perPage } = pageParams(x.query)
      if (Either.isLeft(page) || Either.isLeft(perPage)) return unprocessable(lefts<unknown, FieldError>(page, perPage))
      const result = env.store.list(page.right, perPage.right)
      return json({ items: result.items, inventory: result.items, pagination: result.pagination })
    }
  }

  const health: InventoryRoute = {
    name: "health",
    bookIdOf: none,
    serve: () =>
      json({
        timestamp: naiveUtc(new Date()),
        request_id: null,
        status: "healthy",
        service: "BookVerse Inventory Service (fake)",
        version: "1.0.0-fake",
        checks: {
          basic: { status: "healthy", message: "Service is running" },
          auth: { status: "healthy", message: "fake inventory: no identity provider involved" }
        },
        uptime: (Date.now() - env.startedAt) / 1000
      })
  }

  return { getStock, adjust, transactions, list, health }
}

/** Body of `POST /__stock`: set a book's stock directly (test set-up). */
export const SetStockRequest = Schema.Struct({
  bookId: Schema.UUID,
  quantity: Schema.Int.pipe(Schema.nonNegative()),
  quantityTotal: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  title: Schema.optional(Schema.String),
  price: Schema.optional(Price)
})

/** Decodes a JSON body with `schema`; Left: "path: problem" lines, for a 400. */
const decodeJsonBody = <A, I>(schema: Schema.Schema<A, I>, text: string): Either.Either<A, string> =>
  Either.mapLeft(Schema.decodeUnknownEither(Schema.parseJson(schema))(text), describeParseError)

/** The admin routes (faults enabled only): `/__faults`, `/__stats`, `/__requests`, `/__stock`. */
const adminRoute = (env: AppEnv, faults: FaultInjector, method: string, path: string, body: string): Answer | undefined => {
  switch (`${method} ${path}`) {
    case "POST /__faults":
      return Either.match(decodeJsonBody(FaultRule, body), {
        onLeft: (message) => detail(400, message),
        onRight: (rule) => json({ id: faults.add(rule) }, 201)
      })
    case "DELETE /__faults":
      return json({ cleared: faults.clear() })
    case "GET /__faults":
      return json({ rules: faults.list(), faultsInjected: env.stats.snapshot().faultsInjected })
    case "GET /__stats":
      return json(env.stats.snapshot())
    case "GET /__requests":
      return json({ requests: env.stats.recent() })
    case "POST /__stats/reset":
      env.stats.reset()
      return json(env.stats.snapshot())
    case "POST /__stock":
      return Either.match(decodeJsonBody(SetStockRequest, body), {
        onLeft: (message) => detail(400, message),
        onRight: (b) =>
          json(env.store.setStock(b.bookId.toLowerCase(), b.quantity, {
            ...(b.quantityTotal === undefined ? {} : { quantityTotal: b.quantityTotal }),
            ...(b.title === undefined ? {} : { title: b.title }),
            ...(b.price === undefined ? {} : { price: b.price })
          }))
      })
    default:
      return undefined
  }
}

const write = (response: ServerResponse, answer: Answer): void => {
  if (response.destroyed || response.headersSent) return
  const text = JSON.stringify(answer.body)
  response.writeHead(answer.status, {
    ...answer.headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text)
  })
  response.end(text)
}

/**
 * Ends the exchange without an answer: a TCP RST (the client sees ECONNRESET), so nothing is
 * written to the dead socket.
 */
const dropConnection = (request: IncomingMessage): void => {
  const socket = request.socket
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}

/** Reads the whole body as UTF-8 text, then calls `k` (not at all if the request is aborted). */
const readBody = (request: IncomingMessage, k: (text: string) => void): void => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.once("end", () => k(chunks.length === 1 ? chunks[0]?.toString("utf8") ?? "" : Buffer.concat(chunks).toString("utf8")))
  request.once("error", () => {})
}

/** The route a method and path name: `[route, path parameter]`, or undefined. HEAD is served as GET. */
const matchInventoryRoute = (
  routes: ReturnType<typeof inventoryRoutes>,
  method: string,
  path: string
): readonly [InventoryRoute, string | undefined] | undefined => {
  if (method === "GET" || method === "HEAD") {
    if (path === "/health") return [routes.health, undefined]
    if (path === "/api/v1/inventory") return [routes.list, undefined]
    if (path === "/api/v1/transactions") return [routes.transactions, undefined]
    const prefix = "/api/v1/inventory/"
    if (path.startsWith(prefix) && path.length > prefix.length && path.indexOf("/", prefix.length) === -1) {
      try {
        return [routes.getStock, decodeURIComponent(path.slice(prefix.length))]
      } catch {
        return [routes.getStock, path.slice(prefix.length)]
      }
    }
    return undefined
  }
  if (method === "POST" && path === "/api/v1/inventory/adjust") return [routes.adjust, undefined]
  return undefined
}

/** The path as the router matches it: repeated slashes as one, no trailing slash. */
const normalisePath = (path: string): string => {
  const single = path.includes("//") ? path.replace(/\/{2,}/g, "/") : path
  return single.length > 1 && single.endsWith("/") ? single.slice(0, -1) : single
}

/**
 * The whole fake as a `node:http` request listener: the contract's routes, the admin routes when
 * `env.faults` is set, and the framework's 404 `{"detail": "Not Found"}` for anything else.
 * `logFault` is told of every fault injected (the Layer logs it at DEBUG).
 */
export const makeHandler = (
  env: AppEnv,
  logFault: (route: RouteName, bookId: string | undefined, fault: Fault) => void = () => {}
) => {
  const routes = inventoryRoutes(env)

  const bookIdOf = (route: InventoryRoute, exchange: Omit<Exchange, "body">): string | undefined => {
    const raw = route.bookIdOf(exchange)
    return raw === undefined ? undefined : Either.getOrElse(parseUuid(raw), () => raw.toLowerCase())
  }

  /**
   * Serves an inventory route and acts out the fault its rules pick (decided before the body is
   * read, from the path and query). The request counts in the stats until its response or its
   * connection closes, whichever comes first (a pipelined request's response may never close);
   * then its pending timers are cancelled, so nothing is applied for a client that has gone.
   */
  const serveGuarded = (route: InventoryRoute, head: Omit<Exchange, "body">, response: ServerResponse) => {
    const request = head.request
    env.stats.begin(route.name, {
      traceparent: headerOf(request, "traceparent"),
      requestId: headerOf(request, "x-request-id")
    })
    const socket = request.socket
    const timers: Array<ReturnType<typeof setTimeout>> = []
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      socket.off("close", finish)
      for (const timer of timers) clearTimeout(timer)
      env.stats.end()
    }
    response.once("close", finish)
    socket.once("close", finish)
    const later = (ms: number, act: () => void) => {
      timers.push(setTimeout(() => {
        if (!finished) act()
      }, ms))
    }

    const bookId = env.faults === undefined ? undefined : bookIdOf(route, head)
    const picked = env.faults?.decide(route.name, bookId)
    const fault = picked === undefined || picked.kind === "none" ? undefined : picked
    if (fault !== undefined) {
      env.stats.faultInjected(fault.kind)
      logFault(route.name, bookId, fault)
    }
    // refused: dropped before the body is read, as a refused connection would be
    if (fault?.kind === "refuse") return dropConnection(request)
    const act = (body: string) => {
      if (finished) return
      const exchange: Exchange = { ...head, body }
      if (fault === undefined) return write(response, route.serve(exchange))
      switch (fault.kind) {
        case "latency":
          return later(fault.ms, () => write(response, route.serve(exchange)))
        case "status":
          return write(response, detail(fault.status, statusDetails[fault.status] ?? "Injected fault"))
        case "reset":
          return dropConnection(request)
        case "hang":
          return later(fault.ms ?? defaultHangMs, () => dropConnection(request))
        case "applyThenFail":
          route.serve(exchange)
          return fault.then === "500" ? write(response, detail(500, "Internal server error")) : dropConnection(request)
      }
    }
    if (request.method === "POST") readBody(request, act)
    else act("")
  }

  return (request: IncomingMessage, response: ServerResponse): void => {
    const method = request.method ?? "GET"
    const target = request.url ?? "/"
    const q = target.indexOf("?")
    const path = normalisePath(q === -1 ? target : target.slice(0, q))
    const query = new URLSearchParams(q === -1 ? "" : target.slice(q + 1))
    const matched = matchInventoryRoute(routes, method, path)
    if (matched !== undefined) return serveGuarded(matched[0], { request, param: matched[1], query }, response)
    const faults = env.faults
    if (faults === undefined) {
      // drain the body (so the connection can be kept alive), then 404
      request.resume()
      request.once("end", () => write(response, notFound))
      return
    }
    readBody(request, (body) => write(response, adminRoute(env, faults, method, path, body) ?? notFound))
  }
}

const headerOf = (request: IncomingMessage, name: string): string | null => {
  const value = request.headers[name]
  return typeof value === "string" ? value : value?.[0] ?? null
}

/** How to run the fake: where to listen and what to start with. */
export interface FakeInventoryOptions {
  /** TCP port; 0 (the default) picks a free one. */
  readonly port?: number
  /** Interface to bind; default 127.0.0.1. */
  readonly host?: string
  /** Books to start with; default the demo catalog ({@link demoCatalog}). */
  readonly seed?: ReadonlyArray<SeedBook>
  /** `true` enables fault injection and the admin routes; `{ rules }` also installs rules. */
  readonly faults?: boolean | { readonly rules: ReadonlyArray<FaultRule> }
  /** When set, adjusts require `Authorization: Bearer <requireToken>`. */
  readonly requireToken?: string | undefined
  /** Random source for `probability` rules (default `Math.random`), for deterministic tests. */
  readonly random?: () => number
}

/** A running fake: its base URL (`http://host:port`, no trailing slash), port, and live state. */
export interface RunningFakeInventory {
  readonly url: string
  readonly host: string
  readonly port: number
  readonly store: InventoryStore
  readonly stats: Stats
  /** The fault rules; undefined when faults are disabled. */
  readonly faults: FaultInjector | undefined
}

/** The fake could not listen (port taken, bad host). */
export class FakeInventoryListenError extends Schema.TaggedError<FakeInventoryListenError>()("FakeInventoryListenError", {
  host: Schema.String,
  port: Schema.Number,
  message: Schema.String
}) {}

const urlHost = (hostname: string): string =>
  hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname.includes(":") ? `[${hostname}]` : hostname

const listen = (server: Server, port: number, host: string) =>
  Effect.async<{ readonly host: string; readonly port: number }, FakeInventoryListenError>((resume) => {
    const onError = (error: Error) => resume(Effect.fail(new FakeInventoryListenError({ host, port, message: error.message })))
    server.once("error", onError)
    server.listen(port, host, () => {
      server.off("error", onError)
      const address = server.address()
      resume(Effect.succeed(
        typeof address === "object" && address !== null
          ? { host: address.address, port: address.port }
          : { host, port }
      ))
    })
  })

/** Stops listening and ends every open connection (a hanging request would hold `close` open). */
const close = (server: Server) =>
  Effect.async<void>((resume) => {
    server.close(() => resume(Effect.void))
    server.closeAllConnections()
  })

/**
 * The running fake inventory server. `FakeInventoryServer.layer(options)` starts it (listening
 * when the Layer is built, closed with every open connection when its scope closes) and provides
 * where it listens and its state. Fails with {@link FakeInventoryListenError} if it cannot listen.
 */
export class FakeInventoryServer extends Context.Tag("fake-inventory/FakeInventoryServer")<
  FakeInventoryServer,
  RunningFakeInventory
>() {
  /** Starts the fake with `options` (see {@link FakeInventoryOptions}); fails if it cannot listen. */
  static readonly layer = (options: FakeInventoryOptions = {}) =>
    Layer.scoped(
      FakeInventoryServer,
      Effect.gen(function*() {
        const faultRules = typeof options.faults === "object" ? options.faults.rules : []
        const env: AppEnv = {
          store: new InventoryStore(options.seed ?? demoCatalog),
          stats: new Stats(),
          faults: options.faults === undefined || options.faults === false
            ? undefined
            : new FaultInjector(faultRules, options.random),
          requireToken: options.requireToken,
          startedAt: Date.now()
        }
        const runFork = Runtime.runFork(yield* Effect.runtime<never>())
        const logFault = (route: RouteName, bookId: string | undefined, fault: Fault) =>
          runFork(Effect.logDebug("fake inventory: injecting fault").pipe(
            Effect.annotateLogs({ route, bookId: bookId ?? null, fault: fault.kind })
          ))
        const server = createServer(makeHandler(env, logFault))
        const address = yield* Effect.acquireRelease(
          listen(server, options.port ?? 0, options.host ?? "127.0.0.1"),
          () => close(server)
        )
        return {
          url: `http://${urlHost(address.host)}:${address.port}`,
          host: address.host,
          port: address.port,
          store: env.store,
          stats: env.stats,
          faults: env.faults
        }
      })
    )
}
