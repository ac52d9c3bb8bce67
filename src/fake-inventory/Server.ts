/**
 * The fake inventory's HTTP app and the Layer that serves it. The inventory routes follow
 * INVENTORY_CONTRACT.md exactly; the admin routes (`/__faults`, `/__stats`, `/__stock`) exist only
 * when faults are enabled, and are not part of the contract.
 */
import { createServer } from "node:http"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Context, Duration, Effect, Either, Layer, Schema } from "effect"
import { demoCatalog, Price, type SeedBook } from "./Catalog.js"
import { defaultHangMs, FaultInjector, FaultRule, type RouteName } from "./Faults.js"
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

type Response = HttpServerResponse.HttpServerResponse

/** `{"detail": text}` with `status`, the service's error body. */
const detail = (status: number, text: string): Response => HttpServerResponse.unsafeJson({ detail: text }, { status })

/** 422 `{"detail": [field errors]}`, the framework's validation failure. */
const unprocessable = (errors: ReadonlyArray<FieldError>): Response =>
  HttpServerResponse.unsafeJson({ detail: errors }, { status: 422 })

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
const lastValue = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" ? value : value?.[value.length - 1]

const queryParam = (name: string) =>
  Effect.map(HttpServerRequest.ParsedSearchParams, (params) => lastValue(params[name]))

const pathParam = (name: string) => Effect.map(HttpRouter.params, (params) => params[name])

const lefts = <A, E>(...results: ReadonlyArray<Either.Either<A, E>>): Array<E> =>
  results.flatMap((r) => (Either.isLeft(r) ? [r.left] : []))

/**
 * Ends the exchange without an answer: a TCP RST (the client sees ECONNRESET), then abandons the
 * handler so nothing is written to the dead socket.
 */
const dropConnection = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<never> =>
  Effect.zipRight(
    Effect.sync(() => {
      const socket = NodeHttpServerRequest.toIncomingMessage(request).socket
      try {
        socket.resetAndDestroy()
      } catch {
        socket.destroy()
      }
    }),
    Effect.interrupt
  )

/**
 * Wraps the handler of an inventory route: counts it in the stats while it runs (including time
 * spent in injected latency or hangs), then acts out the fault the rules pick for it, if any.
 * `bookIdOf` reads the id the request is about (path or query), for rules that target one book.
 */
const guarded = <R1, R2>(
  env: AppEnv,
  route: RouteName,
  bookIdOf: Effect.Effect<string | undefined, never, R1>,
  serve: Effect.Effect<Response, never, R2>
): Effect.Effect<Response, never, R1 | R2 | HttpServerRequest.HttpServerRequest> =>
  Effect.acquireUseRelease(
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.sync(() =>
        env.stats.begin(route, {
          traceparent: request.headers["traceparent"] ?? null,
          requestId: request.headers["x-request-id"] ?? null
        })
      )
    ),
    () =>
      Effect.gen(function*() {
        if (env.faults === undefined) return yield* serve
        const request = yield* HttpServerRequest.HttpServerRequest
        const raw = yield* bookIdOf
        const bookId = raw === undefined ? undefined : Either.getOrElse(parseUuid(raw), () => raw.toLowerCase())
        const fault = env.faults.decide(route, bookId)
        if (fault === undefined || fault.kind === "none") return yield* serve
        env.stats.faultInjected(fault.kind)
        yield* Effect.logDebug("fake inventory: injecting fault").pipe(
          Effect.annotateLogs({ route, bookId: bookId ?? null, fault: fault.kind })
        )
        switch (fault.kind) {
          case "latency":
            yield* Effect.sleep(Duration.millis(fault.ms))
            return yield* serve
          case "status":
            return detail(fault.status, statusDetails[fault.status] ?? "Injected fault")
          case "refuse":
            return yield* dropConnection(request)
          case "reset":
            yield* Effect.ignore(request.arrayBuffer)
            return yield* dropConnection(request)
          case "hang":
            yield* Effect.sleep(Duration.millis(fault.ms ?? defaultHangMs))
            return yield* dropConnection(request)
          case "applyThenFail":
            yield* serve
            return fault.then === "500" ? detail(500, "Internal server error") : yield* dropConnection(request)
        }
      }),
    () => Effect.sync(() => env.stats.end())
  )

/** `Authorization: Bearer <token>` (scheme case-insensitive), as a service token is checked. */
const hasBearer = (header: string | undefined, token: string): boolean => {
  const match = header?.match(/^\s*bearer\s+(\S+)\s*$/i)
  return match?.[1] === token
}

const readText = (request: HttpServerRequest.HttpServerRequest) => Effect.orElseSucceed(request.text, () => "")

/** The contract's inventory routes (INVENTORY_CONTRACT.md), served from `env`. */
const inventoryRoutes = (env: AppEnv) => {
  const getStock = Effect.map(pathParam("book_id"), (raw) =>
    Either.match(uuidParam(["path", "book_id"], raw), {
      onLeft: (error) => unprocessable([error]),
      onRight: (bookId) => {
        const view = env.store.stock(bookId)
        return view === undefined ? detail(404, "Inventory record not found") : HttpServerResponse.unsafeJson(view)
      }
    }))

  const adjust = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (env.requireToken !== undefined && !hasBearer(request.headers["authorization"], env.requireToken)) {
      return detail(401, "Authentication required").pipe(HttpServerResponse.setHeader("www-authenticate", "Bearer"))
    }
    const bookId = uuidParam(["query", "book_id"], yield* queryParam("book_id"))
    const body = adjustBody(yield* readText(request))
    if (Either.isLeft(bookId) || Either.isLeft(body)) {
      return unprocessable([...lefts(bookId), ...(Either.isLeft(body) ? body.left : [])])
    }
    const outcome = env.store.adjust(bookId.right, body.right.quantity_change, body.right.notes)
    return outcome._tag === "Applied"
      ? HttpServerResponse.unsafeJson(outcome.transaction)
      : detail(400, "Invalid adjustment - would result in negative inventory")
  })

  const pageParams = Effect.gen(function*() {
    const page = intQuery("page", yield* queryParam("page"), 1, { ge: 1 })
    const perPage = intQuery("per_page", yield* queryParam("per_page"), defaultPerPage, { ge: 1, le: maxPerPage })
    return { page, perPage }
  })

  const transactions = Effect.gen(function*() {
    const { page, perPage } = yield* pageParams
    const raw = yield* queryParam("book_id")
    const bookId = raw === undefined ? Either.right(undefined) : uuidParam(["query", "book_id"], raw)
    if (Either.isLeft(page) || Either.isLeft(perPage) || Either.isLeft(bookId)) {
      return unprocessable(lefts<unknown, FieldError>(page, perPage, bookId))
    }
    const result = env.store.transactions(bookId.right, page.right, perPage.right)
    return HttpServerResponse.unsafeJson({ transactions: result.items, pagination: result.pagination })
  })

  // The brief names the list `items`; the real service calls it `inventory`. Both are served so a
  // client written against either works (extra fields are allowed by the contract).
  const list = Effect.gen(function*() {
    const { page, perPage } = yield* pageParams
    if (Either.isLeft(page) || Either.isLeft(perPage)) return unprocessable(lefts<unknown, FieldError>(page, perPage))
    const result = env.store.list(page.right, perPage.right)
    return HttpServerResponse.unsafeJson({ items: result.items, inventory: result.items, pagination: result.pagination })
  })

  const health = Effect.sync(() =>
    HttpServerResponse.unsafeJson({
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
  )

  const none = Effect.succeed(undefined)
  return HttpRouter.empty.pipe(
    HttpRouter.get("/health", guarded(env, "health", none, health)),
    HttpRouter.get("/api/v1/inventory", guarded(env, "list", none, list)),
    HttpRouter.post("/api/v1/inventory/adjust", guarded(env, "adjust", queryParam("book_id"), adjust)),
    HttpRouter.get("/api/v1/inventory/:book_id", guarded(env, "getStock", pathParam("book_id"), getStock)),
    HttpRouter.get("/api/v1/transactions", guarded(env, "transactions", queryParam("book_id"), transactions))
  )
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
const decodeJsonBody = <A, I>(schema: Schema.Schema<A, I>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const text = yield* readText(request)
    return Either.mapLeft(
      Schema.decodeUnknownEither(Schema.parseJson(schema))(text),
      describeParseError
    )
  })

/** The admin routes (faults enabled only): `/__faults`, `/__stats`, `/__stock`. */
const adminRoutes = (env: AppEnv, faults: FaultInjector) =>
  HttpRouter.empty.pipe(
    HttpRouter.post(
      "/__faults",
      Effect.map(decodeJsonBody(FaultRule), (rule) =>
        Either.match(rule, {
          onLeft: (message) => detail(400, message),
          onRight: (r) => HttpServerResponse.unsafeJson({ id: faults.add(r) }, { status: 201 })
        }))
    ),
    HttpRouter.del("/__faults", Effect.sync(() => HttpServerResponse.unsafeJson({ cleared: faults.clear() }))),
    HttpRouter.get(
      "/__faults",
      Effect.sync(() =>
        HttpServerResponse.unsafeJson({ rules: faults.list(), faultsInjected: env.stats.snapshot().faultsInjected })
      )
    ),
    HttpRouter.get("/__stats", Effect.sync(() => HttpServerResponse.unsafeJson(env.stats.snapshot()))),
    HttpRouter.get("/__requests", Effect.sync(() => HttpServerResponse.unsafeJson({ requests: env.stats.recent() }))),
    HttpRouter.post(
      "/__stats/reset",
      Effect.sync(() => {
        env.stats.reset()
        return HttpServerResponse.unsafeJson(env.stats.snapshot())
      })
    ),
    HttpRouter.post(
      "/__stock",
      Effect.map(decodeJsonBody(SetStockRequest), (body) =>
        Either.match(body, {
          onLeft: (message) => detail(400, message),
          onRight: (b) =>
            HttpServerResponse.unsafeJson(
              env.store.setStock(b.bookId.toLowerCase(), b.quantity, {
                ...(b.quantityTotal === undefined ? {} : { quantityTotal: b.quantityTotal }),
                ...(b.title === undefined ? {} : { title: b.title }),
                ...(b.price === undefined ? {} : { price: b.price })
              })
            )
        }))
    )
  )

/**
 * The whole fake as an HTTP app: the contract's routes, the admin routes when `env.faults` is set,
 * and the framework's 404 `{"detail": "Not Found"}` for anything else.
 */
export const makeApp = (env: AppEnv) => {
  const routes = env.faults === undefined
    ? inventoryRoutes(env)
    : HttpRouter.concat(inventoryRoutes(env), adminRoutes(env, env.faults))
  return routes.pipe(Effect.catchTag("RouteNotFound", () => Effect.succeed(detail(404, "Not Found"))))
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

const urlHost = (hostname: string): string =>
  hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname.includes(":") ? `[${hostname}]` : hostname

/**
 * The running fake inventory server. `FakeInventoryServer.layer(options)` starts it (listening
 * when the Layer is built, closed with every open connection when its scope closes) and provides
 * where it listens and its state.
 */
export class FakeInventoryServer extends Context.Tag("fake-inventory/FakeInventoryServer")<
  FakeInventoryServer,
  RunningFakeInventory
>() {
  /** Starts the fake with `options` (see {@link FakeInventoryOptions}); fails if it cannot listen. */
  static readonly layer = (options: FakeInventoryOptions = {}) =>
    Layer.unwrapEffect(Effect.sync(() => {
      const nodeServer = createServer()
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
      const serve = Layer.scoped(
        FakeInventoryServer,
        Effect.gen(function*() {
          const server = yield* HttpServer.HttpServer
          // A hanging request would hold server.close() open; end every connection on shutdown.
          yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
          yield* server.serve(makeApp(env))
          const address = server.address
          const host = address._tag === "TcpAddress" ? address.hostname : "127.0.0.1"
          const port = address._tag === "TcpAddress" ? address.port : 0
          return { url: `http://${urlHost(host)}:${port}`, host, port, store: env.store, stats: env.stats, faults: env.faults }
        })
      )
      return serve.pipe(
        Layer.provide(NodeHttpServer.layer(() => nodeServer, { port: options.port ?? 0, host: options.host ?? "127.0.0.1" }))
      )
    }))
}
