import { Migrator, SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * The schema, one Effect per migration, kept in the bundle (`Migrator.fromRecord`). Written to
 * run on SQLite and Postgres alike: money as integer cents, timestamps as ISO-8601 UTC text
 * (`2026-11-29T12:00:00.000Z`, which sorts as time does), payloads as JSON text (`jsonb` on
 * Postgres).
 */
const migrations = {
  "0001_orders": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const json = sql.onDialectOrElse({ pg: () => sql.literal("JSONB"), orElse: () => sql.literal("TEXT") })
    yield* sql`
      CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        idempotency_key TEXT,
        status TEXT NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED', 'PAYMENT_FAILED')),
        total_cents BIGINT NOT NULL,
        currency TEXT NOT NULL DEFAULT 'USD',
        payment_state TEXT NOT NULL DEFAULT 'none' CHECK (payment_state IN ('none', 'succeeded', 'declined')),
        payment_reference TEXT,
        failure_reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      )`
    yield* sql`CREATE INDEX orders_status_updated ON orders (status, updated_at)`
    yield* sql`
      CREATE TABLE order_items (
        order_id TEXT NOT NULL REFERENCES orders (id),
        line_no INTEGER NOT NULL,
        book_id TEXT NOT NULL,
        qty INTEGER NOT NULL CHECK (qty > 0),
        unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
        line_total_cents BIGINT NOT NULL,
        stock_state TEXT NOT NULL DEFAULT 'pending'
          CHECK (stock_state IN ('pending', 'taken', 'unknown', 'returned', 'return_failed')),
        updated_at TEXT NOT NULL,
        PRIMARY KEY (order_id, line_no)
      )`
    yield* sql`
      CREATE TABLE idempotency_keys (
        user_id TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        order_id TEXT,
        state TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
        response_status INTEGER,
        response_body ${json},
        created_at TEXT NOT NULL,
        locked_at TEXT,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (user_id, idempotency_key)
      )`
    yield* sql`CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at)`
    yield* sql`
      CREATE TABLE outbox_events (
        id TEXT PRIMARY KEY,
        aggregate_id TEXT NOT NULL,
        type TEXT NOT NULL,
        payload ${json} NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        processed_at TEXT,
        last_error TEXT
      )`
    yield* sql`CREATE INDEX outbox_events_due ON outbox_events (processed_at, next_attempt_at)`
  }),
  // The outbox worker's lease per claimed row (`claimed_by` until `lease_until`), and dead rows
  // (`dead_at`: kept and visible, never retried). Creation order within an order needs a tie-break
  // for rows written in the same millisecond: SQLite's implicit `rowid` grows with every insert;
  // Postgres has none, so it gets a `seq` column (see `Outbox.claimDue`).
  "0002_outbox_leases": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE outbox_events ADD COLUMN claimed_by TEXT`
    yield* sql`ALTER TABLE outbox_events ADD COLUMN lease_until TEXT`
    yield* sql`ALTER TABLE outbox_events ADD COLUMN dead_at TEXT`
    yield* sql.onDialectOrElse({
      pg: () => sql`ALTER TABLE outbox_events ADD COLUMN seq BIGSERIAL`,
      orElse: () => Effect.void
    })
    yield* sql`CREATE INDEX outbox_events_aggregate ON outbox_events (aggregate_id, created_at)`
  }),
  // The recovery loop's claim on an order (one process at a time, until `lease_until`) and its
  // backoff (`recovery_attempts`, `next_recovery_at`).
  "0003_order_recovery": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE orders ADD COLUMN lease_owner TEXT`
    yield* sql`ALTER TABLE orders ADD COLUMN lease_until TEXT`
    yield* sql`ALTER TABLE orders ADD COLUMN recovery_attempts INTEGER NOT NULL DEFAULT 0`
    yield* sql`ALTER TABLE orders ADD COLUMN next_recovery_at TEXT`
  }),
  // Every recovery pass (every 5 s) looks for in-flight keys claimed before a time
  // (`IdempotencyStore.releaseAbandoned` and `findStuck`): without an index that read the whole
  // table, every key of the last day. Only in-flight keys are indexed, a handful at any time.
  // Building it reads the table once and, on Postgres, blocks writes to it meanwhile (a migration
  // runs in a transaction, so not CONCURRENTLY): on a large table, create it beforehand with
  // CREATE INDEX CONCURRENTLY (README, "Postgres"), and this is then a no-op.
  "0004_in_flight_keys": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE INDEX IF NOT EXISTS idempotency_keys_in_flight ON idempotency_keys (locked_at) WHERE state = 'in_progress'`
  })
}

/**
 * Applies every migration not yet applied (recorded in `effect_sql_migrations`) and returns the
 * ones it applied as `[id, name]`. Fails with `MigrationError` or `SqlError`.
 */
export const migrate = Migrator.make({})({ loader: Migrator.fromRecord(migrations) })
