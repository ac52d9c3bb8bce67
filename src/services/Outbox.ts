import { SqlClient, SqlSchema } from "@effect/sql"
import { Context, Effect, Layer, Schema } from "effect"
import { DbInt } from "./SqlColumns.js"
import { makeSqlRunner, type SqlSteps } from "./SqlSteps.js"
import { randomUUID } from "node:crypto"

/** An event to publish: its type (`order.created`), the aggregate it is about, and its JSON payload. */
export interface OutboxEvent {
  readonly type: string
  readonly aggregateId: string
  readonly payload: unknown
}

/** A row a worker claimed: leased to it until its lease ends, to publish and then mark. */
export interface ClaimedEvent {
  /** The row id (a UUID): the event's id on the wire, stable across redeliveries. */
  readonly id: string
  readonly aggregateId: string
  readonly type: string
  readonly payload: unknown
  readonly createdAt: Date
  /** Failed publish attempts so far (0 on the first). */
  readonly attempts: number
}

/** What the outbox holds right now, for the worker's health and logs. */
export interface OutboxStats {
  /** Rows not yet delivered and not dead (due, backing off, leased, or waiting behind an earlier row). */
  readonly pending: number
  /** Rows parked dead after too many failed attempts. */
  readonly dead: number
  /** Creation time of the oldest pending row, if any: the outbox lag is now minus this. */
  readonly oldestPendingAt: Date | undefined
}

/**
 * The transactional outbox: events are appended in the same database transaction as the state
 * change they announce, and a worker delivers them later, at least once.
 *
 * Delivery protocol (one lease per row): `claimDue` leases due rows to one worker until
 * `leaseUntil`; the worker publishes and then calls `markPublished`, `markFailed` or `markDead`.
 * Those three write only while the row is still leased to that worker (false otherwise, e.g. after
 * its lease ran out and another worker claimed the row). A worker that dies leaves its rows leased;
 * they become claimable again when the lease ends.
 */
export class Outbox extends Context.Tag("bookverse/Outbox")<
  Outbox,
  {
    /**
     * Appends `event` (returns its id, a UUID) inside the caller's current transaction, if any.
     * `now` is the creation time.
     */
    readonly append: (event: OutboxEvent, now: Date) => Effect.Effect<string>
    /** `append` as steps, for a caller's transaction (`SqlRunner`). */
    readonly appendSteps: (event: OutboxEvent, now: Date) => SqlSteps<string>
    /**
     * Leases up to `limit` due rows to `worker` until `leaseUntil` and returns them oldest first.
     * A row is due when it is neither delivered nor dead, its `next_attempt_at` is at or before
     * `now`, nobody holds an unexpired lease on it, and no earlier row of the same aggregate
     * (order) is still undelivered (dead included): so an order's events go out in creation
     * order, and one batch holds at most one row per order. Database failures are defects.
     */
    readonly claimDue: (request: {
      readonly worker: string
      readonly limit: number
      readonly now: Date
      readonly leaseUntil: Date
    }) => Effect.Effect<ReadonlyArray<ClaimedEvent>>
    /** Marks a row `worker` holds as delivered at `now`; false when the lease was lost. */
    readonly markPublished: (id: string, worker: string, now: Date) => Effect.Effect<boolean>
    /**
     * Records a failed attempt on a row `worker` holds: `attempts` + 1, `last_error`, and the next
     * attempt not before `retryAt`; releases the lease. False when the lease was lost.
     */
    readonly markFailed: (id: string, worker: string, error: string, retryAt: Date) => Effect.Effect<boolean>
    /**
     * Parks a row `worker` holds as dead at `now` (`attempts` + 1, `last_error`): kept, visible,
     * never claimed again. False when the lease was lost.
     */
    readonly markDead: (id: string, worker: string, error: string, now: Date) => Effect.Effect<boolean>
    /** Counts of pending and dead rows and the oldest pending row's creation time. */
    readonly stats: Effect.Effect<OutboxStats>
  }
>() {}


/** `payload` is JSON text on SQLite and already parsed `jsonb` on Postgres. */
const Payload = Schema.Union(Schema.parseJson(), Schema.Record({ key: Schema.String, value: Schema.Unknown }))

const ClaimedRow = Schema.Struct({
  id: Schema.String,
  aggregate_id: Schema.String,
  type: Schema.String,
  payload: Payload,
  created_at: Schema.String,
  attempts: DbInt
})

const StatsRow = Schema.Struct({
  pending: Schema.NullOr(DbInt),
  dead: Schema.NullOr(DbInt),
  oldest_pending: Schema.NullOr(Schema.String)
})

/** `last_error` is kept short: it is for an operator to read, not a log. */
const MAX_ERROR_LENGTH = 1000
const clip = (error: string) => (error.length > MAX_ERROR_LENGTH ? `${error.slice(0, MAX_ERROR_LENGTH - 1)}…` : error)

/** The outbox in the `outbox_events` table of the `SqlClient` in context (migrations 0001, 0002). */
export const OutboxLive = Layer.effect(
  Outbox,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const runner = yield* makeSqlRunner

    // Creation order: `created_at`, then insertion order for rows of the same millisecond
    // (`rowid` on SQLite, the `seq` column on Postgres; migration 0002).
    const seq = sql.onDialectOrElse({ pg: () => sql.literal("seq"), orElse: () => sql.literal("rowid") })
    // Postgres: concurrent claimers skip rows another claim is locking instead of waiting for them
    // (and then re-reading them as claimable). SQLite runs one writer at a time, so the UPDATE
    // below is atomic as it stands.
    const skipLocked = sql.onDialectOrElse({ pg: () => sql.literal("FOR UPDATE SKIP LOCKED"), orElse: () => sql.literal("") })

    const claim = SqlSchema.findAll({
      Request: Schema.Struct({ worker: Schema.String, limit: Schema.Int, now: Schema.String, leaseUntil: Schema.String }),
      Result: ClaimedRow,
      execute: ({ leaseUntil, limit, now, worker }) => sql`
        UPDATE outbox_events
        SET claimed_by = ${worker}, lease_until = ${leaseUntil}
        WHERE id IN (
          SELECT o.id FROM outbox_events o
          WHERE o.processed_at IS NULL AND o.dead_at IS NULL
            AND o.next_attempt_at <= ${now}
            AND (o.lease_until IS NULL OR o.lease_until <= ${now})
            AND NOT EXISTS (
              SELECT 1 FROM outbox_events e
              WHERE e.aggregate_id = o.aggregate_id AND e.processed_at IS NULL
                AND (e.created_at < o.created_at OR (e.created_at = o.created_at AND e.${seq} < o.${seq}))
            )
          ORDER BY o.created_at, o.${seq}
          LIMIT ${limit}
          ${skipLocked}
        )
        AND (lease_until IS NULL OR lease_until <= ${now})
        RETURNING id, aggregate_id, type, payload, created_at, attempts`
    })

    const countRows = SqlSchema.single({
      Request: Schema.Void,
      Result: StatsRow,
      execute: () => sql`
        SELECT
          SUM(CASE WHEN dead_at IS NULL THEN 1 ELSE 0 END) AS pending,
          SUM(CASE WHEN dead_at IS NULL THEN 0 ELSE 1 END) AS dead,
          MIN(CASE WHEN dead_at IS NULL THEN created_at END) AS oldest_pending
        FROM outbox_events
        WHERE processed_at IS NULL`
    })

    const updated = (rows: ReadonlyArray<unknown>) => rows.length === 1

    function* appendSteps(event: OutboxEvent, now: Date): SqlSteps<string> {
      const id = randomUUID()
      const at = now.toISOString()
      yield sql`
        INSERT INTO outbox_events (id, aggregate_id, type, payload, created_at, attempts, next_attempt_at)
        VALUES (${id}, ${event.aggregateId}, ${event.type}, ${JSON.stringify(event.payload)}, ${at}, 0, ${at})`
      return id
    }

    return Outbox.of({
      append: (event, now) => runner.run(() => appendSteps(event, now)),
      appendSteps,

      claimDue: Effect.fn("Outbox.claimDue")(function* (request) {
        const rows = yield* claim({
          worker: request.worker,
          limit: request.limit,
          now: request.now.toISOString(),
          leaseUntil: request.leaseUntil.toISOString()
        }).pipe(Effect.orDie)
        // RETURNING promises no order; the batch goes out oldest first.
        return rows
          .map((r): ClaimedEvent => ({
            id: r.id,
            aggregateId: r.aggregate_id,
            type: r.type,
            payload: r.payload,
            createdAt: new Date(r.created_at),
            attempts: r.attempts
          }))
          .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
      }),

      markPublished: (id, worker, now) =>
        sql`UPDATE outbox_events SET processed_at = ${now.toISOString()}, claimed_by = NULL, lease_until = NULL
            WHERE id = ${id} AND claimed_by = ${worker} AND processed_at IS NULL AND dead_at IS NULL
            RETURNING id`.pipe(Effect.map(updated), Effect.orDie, Effect.withSpan("Outbox.markPublished")),

      markFailed: (id, worker, error, retryAt) =>
        sql`UPDATE outbox_events
            SET attempts = attempts + 1, last_error = ${clip(error)}, next_attempt_at = ${retryAt.toISOString()},
                claimed_by = NULL, lease_until = NULL
            WHERE id = ${id} AND claimed_by = ${worker} AND processed_at IS NULL AND dead_at IS NULL
            RETURNING id`.pipe(Effect.map(updated), Effect.orDie, Effect.withSpan("Outbox.markFailed")),

      markDead: (id, worker, error, now) =>
        sql`UPDATE outbox_events
            SET attempts = attempts + 1, last_error = ${clip(error)}, dead_at = ${now.toISOString()},
                claimed_by = NULL, lease_until = NULL
            WHERE id = ${id} AND claimed_by = ${worker} AND processed_at IS NULL AND dead_at IS NULL
            RETURNING id`.pipe(Effect.map(updated), Effect.orDie, Effect.withSpan("Outbox.markDead")),

      stats: countRows(undefined).pipe(
        Effect.map((row) => ({
          pending: row.pending ?? 0,
          dead: row.dead ?? 0,
          oldestPendingAt: row.oldest_pending === null ? undefined : new Date(row.oldest_pending)
        })),
        Effect.orDie,
        Effect.withSpan("Outbox.stats")
      )
    })
  })
)
