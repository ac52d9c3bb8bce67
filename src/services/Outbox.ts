import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"

/** An event to publish: its type (`order.created`), the aggregate it is about, and its JSON payload. */
export interface OutboxEvent {
  readonly type: string
  readonly aggregateId: string
  readonly payload: unknown
}

/**
 * The transactional outbox: events are appended in the same database transaction as the state
 * change they announce, and a worker delivers them later, at least once.
 */
export class Outbox extends Context.Tag("bookverse/Outbox")<
  Outbox,
  {
    /**
     * Appends `event` (returns its id, a UUID) inside the caller's current transaction, if any.
     * `now` is the creation time.
     */
    readonly append: (event: OutboxEvent, now: Date) => Effect.Effect<string>
  }
>() {}

/** The outbox in the `outbox_events` table of the `SqlClient` in context. */
export const OutboxLive = Layer.effect(
  Outbox,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return Outbox.of({
      append: (event, now) => {
        const id = randomUUID()
        const at = now.toISOString()
        return sql`
          INSERT INTO outbox_events (id, aggregate_id, type, payload, created_at, attempts, next_attempt_at)
          VALUES (${id}, ${event.aggregateId}, ${event.type}, ${JSON.stringify(event.payload)}, ${at}, 0, ${at})
        `.pipe(Effect.as(id), Effect.orDie)
      }
    })
  })
)
