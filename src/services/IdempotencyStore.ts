import { SqlClient } from "@effect/sql"
import { Config, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { DbInt } from "./SqlColumns.js"
import { OrderId as OrderIdSchema, type OrderId } from "../domain/Ids.js"
import { makeSqlRunner, type SqlSteps } from "./SqlSteps.js"
import { tracedWhereBuilt } from "./Tracing.js"

/** Who used a key, and for what: keys are scoped to the user; the fingerprint identifies the request. */
export interface KeyScope {
  readonly userId: string
  readonly key: string
  readonly fingerprint: string
}

/** The decision for a request carrying an idempotency key (IETF Idempotency-Key draft, section 2). */
export type ClaimResult =
  /** The key is ours: run the request. */
  | { readonly _tag: "Claimed" }
  /** The first request finished with this response: answer it again. */
  | { readonly _tag: "Replay"; readonly status: number; readonly body: unknown }
  /** The key was used with a different request. */
  | { readonly _tag: "Conflict" }
  /** The first request is still running. */
  | { readonly _tag: "InProgress" }

/**
 * Idempotency keys, their fingerprints and stored responses. A key is claimed atomically (one
 * unique insert), kept for its time to live once completed, and released when the request ended
 * without a decision about money so that a retry gets a fresh attempt (ARCHITECTURE.md, "What a
 * key remembers").
 */
export interface IdempotencyStoreService {
  /** Claims `scope.key` for `scope.userId`, or says why not. */
  readonly claim: (scope: KeyScope, now: Date) => Effect.Effect<ClaimResult>
  /** Records which order the in-flight request created. */
  readonly attachOrder: (scope: KeyScope, orderId: OrderId) => Effect.Effect<void>
  /** `attachOrder` as steps, for a caller's transaction (`SqlRunner`). */
  readonly attachOrderSteps: (scope: KeyScope, orderId: OrderId) => SqlSteps<void>
  /** Stores the final response (HTTP status and JSON body) to replay until the key expires. */
  readonly complete: (scope: KeyScope, status: number, body: unknown, now: Date) => Effect.Effect<void>
  /** `complete` as steps, for a caller's transaction (`SqlRunner`). */
  readonly completeSteps: (scope: KeyScope, status: number, body: unknown, now: Date) => SqlSteps<void>
  /** Forgets an in-flight claim, so the same key may be tried again. */
  readonly release: (scope: KeyScope) => Effect.Effect<void>
  /** `complete` for the in-flight key that created `orderId` (used by recovery). */
  readonly completeForOrder: (orderId: OrderId, status: number, body: unknown, now: Date) => Effect.Effect<void>
  /** `release` for the in-flight key that created `orderId` (used by recovery). */
  readonly releaseForOrder: (orderId: OrderId) => Effect.Effect<void>
  /**
   * Forgets in-flight claims that never created an order and were taken before `before` (their
   * process died between the claim and the order insert). Returns how many.
   */
  readonly releaseAbandoned: (before: Date) => Effect.Effect<number>
  /**
   * Orders whose key is still in flight although the order is final (the process died between
   * finishing the order and storing the key's response), claimed before `before`.
   */
  readonly findStuck: (before: Date) => Effect.Effect<ReadonlyArray<OrderId>>
}

/** Idempotency keys (table `idempotency_keys`). */
export class IdempotencyStore extends Context.Tag("bookverse/IdempotencyStore")<
  IdempotencyStore,
  IdempotencyStoreService
>() {}

/** How long keys live and when an abandoned in-flight claim may be taken over. */
export interface IdempotencyOptions {
  /** How long a completed key replays its response (default 24 h). */
  readonly ttl: Duration.Duration
  /** An in-flight claim with no order yet, older than this, belonged to a process that died. */
  readonly staleClaimAfter: Duration.Duration
}

/** `IDEMPOTENCY_TTL_SECONDS` (86400). */
export const IdempotencyConfig: Config.Config<IdempotencyOptions> = Config.all({
  ttl: Config.integer("IDEMPOTENCY_TTL_SECONDS").pipe(
    Config.validate({ message: "must be a positive number of seconds", validation: (n) => n > 0 }),
    Config.withDefault(86_400),
    Config.map(Duration.seconds)
  ),
  staleClaimAfter: Config.succeed(Duration.minutes(2))
})


const KeyRow = Schema.Struct({
  fingerprint: Schema.String,
  order_id: Schema.NullOr(Schema.String),
  state: Schema.Literal("in_progress", "completed"),
  response_status: Schema.NullOr(DbInt),
  response_body: Schema.NullOr(Schema.Unknown),
  locked_at: Schema.NullOr(Schema.String),
  expires_at: Schema.String
})

const parseBody = (body: unknown): unknown => {
  if (typeof body !== "string") return body // jsonb arrives parsed
  try {
    return JSON.parse(body)
  } catch {
    return body
  }
}

const decodeKeyRow = Schema.decodeUnknownSync(KeyRow)
const decodeOrderIds = Schema.decodeUnknownSync(Schema.Array(Schema.Struct({ order_id: OrderIdSchema })))

/** The store on the `SqlClient` in context (its hot path through `SqlRunner`). */
export const makeIdempotencyStore = (options: IdempotencyOptions) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runner = yield* makeSqlRunner
    const traced = yield* tracedWhereBuilt
    const ttlMs = Duration.toMillis(options.ttl)

    function* claimOnce(scope: KeyScope, now: Date): SqlSteps<Option.Option<ClaimResult>> {
      const at = now.toISOString()
      // completed keys live for the ttl; an in-flight one is bounded by the saga, not by this
      const expires = new Date(now.getTime() + ttlMs).toISOString()
      const inserted = yield sql`
        INSERT INTO idempotency_keys (user_id, idempotency_key, fingerprint, state, created_at, locked_at, expires_at)
        VALUES (${scope.userId}, ${scope.key}, ${scope.fingerprint}, 'in_progress', ${at}, ${at}, ${expires})
        ON CONFLICT (user_id, idempotency_key) DO NOTHING
        RETURNING user_id`
      if (inserted.length === 1) return Option.some<ClaimResult>({ _tag: "Claimed" })

      const found = yield sql`SELECT fingerprint, order_id, state, response_status, response_body, locked_at, expires_at
            FROM idempotency_keys WHERE user_id = ${scope.userId} AND idempotency_key = ${scope.key}`
      if (found.length === 0) return Option.none<ClaimResult>() // released meanwhile: try again
      const row = decodeKeyRow(found[0])
      if (row.state === "completed" && row.expires_at <= at) {
        yield sql`DELETE FROM idempotency_keys
                   WHERE user_id = ${scope.userId} AND idempotency_key = ${scope.key} AND expires_at = ${row.expires_at}`
        return Option.none<ClaimResult>()
      }
      if (row.fingerprint !== scope.fingerprint) return Option.some<ClaimResult>({ _tag: "Conflict" })
      if (row.state === "completed") {
        return Option.some<ClaimResult>({
          _tag: "Replay",
          status: row.response_status ?? 200,
          body: parseBody(row.response_body)
        })
      }
      const staleBefore = new Date(now.getTime() - Duration.toMillis(options.staleClaimAfter)).toISOString()
      if (row.order_id === null && row.locked_at !== null && row.locked_at < staleBefore) {
        const taken = yield sql`
          UPDATE idempotency_keys SET locked_at = ${at}
          WHERE user_id = ${scope.userId} AND idempotency_key = ${scope.key}
            AND state = 'in_progress' AND order_id IS NULL AND locked_at = ${row.locked_at}
          RETURNING user_id`
        if (taken.length === 1) return Option.some<ClaimResult>({ _tag: "Claimed" })
      }
      return Option.some<ClaimResult>({ _tag: "InProgress" })
    }

    function* claimSteps(scope: KeyScope, now: Date): SqlSteps<ClaimResult> {
      for (let i = 0; i < 3; i++) {
        const result = yield* claimOnce(scope, now)
        if (Option.isSome(result)) return result.value
      }
      return { _tag: "InProgress" }
    }

    function* attachOrderSteps(scope: KeyScope, orderId: OrderId): SqlSteps<void> {
      yield sql`UPDATE idempotency_keys SET order_id = ${orderId}
          WHERE user_id = ${scope.userId} AND idempotency_key = ${scope.key} AND fingerprint = ${scope.fingerprint}`
    }

    function* completeSteps(scope: KeyScope, status: number, body: unknown, now: Date): SqlSteps<void> {
      const expires = new Date(now.getTime() + ttlMs).toISOString()
      yield sql`UPDATE idempotency_keys
          SET state = 'completed', response_status = ${status}, response_body = ${JSON.stringify(body)},
              locked_at = NULL, expires_at = ${expires}
          WHERE user_id = ${scope.userId} AND idempotency_key = ${scope.key} AND fingerprint = ${scope.fingerprint}`
    }

    function* releaseSteps(scope: KeyScope): SqlSteps<void> {
      yield sql`DELETE FROM idempotency_keys
          WHERE user_id = ${scope.userId} AND idempotency_key = ${scope.key}
            AND fingerprint = ${scope.fingerprint} AND state = 'in_progress'`
    }

    return IdempotencyStore.of({
      claim: (scope, now) => runner.run(() => claimSteps(scope, now)).pipe(traced("IdempotencyStore.claim")),
      attachOrder: (scope, orderId) => runner.run(() => attachOrderSteps(scope, orderId)),
      attachOrderSteps,
      complete: (scope, status, body, now) =>
        runner.run(() => completeSteps(scope, status, body, now)).pipe(traced("IdempotencyStore.complete")),
      completeSteps,
      release: (scope) => runner.run(() => releaseSteps(scope)),

      completeForOrder: (orderId, status, body, now) => {
        const expires = new Date(now.getTime() + ttlMs).toISOString()
        return sql`UPDATE idempotency_keys
            SET state = 'completed', response_status = ${status}, response_body = ${JSON.stringify(body)},
                locked_at = NULL, expires_at = ${expires}
            WHERE order_id = ${orderId} AND state = 'in_progress'`.pipe(Effect.asVoid, Effect.orDie)
      },

      releaseForOrder: (orderId) =>
        sql`DELETE FROM idempotency_keys WHERE order_id = ${orderId} AND state = 'in_progress'`.pipe(
          Effect.asVoid,
          Effect.orDie
        ),

      findStuck: (before) =>
        sql<{ order_id: string }>`
          SELECT k.order_id FROM idempotency_keys k JOIN orders o ON o.id = k.order_id
          WHERE k.state = 'in_progress' AND o.status <> 'PENDING' AND k.locked_at < ${before.toISOString()}`.pipe(
          Effect.map((rows) => decodeOrderIds(rows).map((r) => r.order_id)),
          Effect.orDie
        ),

      releaseAbandoned: (before) =>
        sql<{ user_id: string }>`DELETE FROM idempotency_keys
            WHERE state = 'in_progress' AND order_id IS NULL AND locked_at < ${before.toISOString()}
            RETURNING user_id`.pipe(Effect.map((rows) => rows.length), Effect.orDie)
    })
  })

/** The live store, configured by `IdempotencyConfig`. */
export const IdempotencyStoreLive = Layer.effect(
  IdempotencyStore,
  Effect.flatMap(IdempotencyConfig, makeIdempotencyStore)
)
