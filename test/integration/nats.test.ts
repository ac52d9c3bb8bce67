/**
 * The outbox worker against the real NATS JetStream on 127.0.0.1:4222 (`.ci/run` starts it and
 * exports it as `EVENTS_TEST_NATS_URL`):
 * 500 confirmed orders give exactly 500 messages, each valid per contracts/order.created.schema.json,
 * with no duplicates although the worker is killed with SIGKILL between a publish and its mark and
 * then restarted. Each run uses its own stream and subject, and deletes the stream afterwards.
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { connect, type JetStreamManager, type NatsConnection } from "nats"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BookId, OrderId, UserId } from "../../src/domain/Ids.js"
import { Cents } from "../../src/domain/Money.js"
import { Order, OrderItem } from "../../src/domain/Order.js"
import { orderCreatedData } from "../../src/services/Checkout.js"
import { IdempotencyStoreLive } from "../../src/services/IdempotencyStore.js"
import { OrderRepo, OrderRepoLive } from "../../src/services/OrderRepo.js"
import { OutboxLive } from "../../src/services/Outbox.js"
import { freePort, type Running, startProcess, tempDir } from "../e2e/harness.js"
import { contractValidator } from "../support/contract.js"
import { runToExit, waitFor } from "../support/process.js"

/** `.ci/run` starts NATS and exports `EVENTS_TEST_NATS_URL`; without it the suite is skipped. */
const NATS_URL = process.env.EVENTS_TEST_NATS_URL ?? ""
const ORDERS = 500
const RUN = randomUUID().replaceAll("-", "").slice(0, 12)
const STREAM = `BV_TEST_${RUN}`
const SUBJECT = `bookverse.test.${RUN}.orders.created`

/** The part of the worker's `/health` body this test reads. */
const Health = Schema.Struct({
  status: Schema.String,
  events: Schema.Struct({ published: Schema.Number, duplicates: Schema.Number }),
  outbox: Schema.Struct({ pending: Schema.Number, lagSeconds: Schema.Number })
})
const decodeHealth = Schema.decodeUnknownSync(Health)
const decodeEvent = Schema.decodeUnknownSync(Schema.Struct({ id: Schema.String, data: Schema.Struct({ orderId: Schema.String }) }))

interface OutboxCounts {
  readonly total: number
  readonly processed: number
  readonly leasedUnmarked: number
}

describe.runIf(NATS_URL !== "")("outbox worker -> NATS JetStream", () => {
  const dir = tempDir()
  const dbUrl = `sqlite:///${join(dir.dir, "checkout.db")}`
  let nc: NatsConnection
  let jsm: JetStreamManager
  let db: ManagedRuntime.ManagedRuntime<SqlClient.SqlClient | OrderRepo, unknown>
  let worker: Running | undefined

  const counts = () =>
    db.runPromise(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ total: number; processed: number; leased_unmarked: number }>`
          SELECT COUNT(*) AS total,
                 SUM(CASE WHEN processed_at IS NOT NULL THEN 1 ELSE 0 END) AS processed,
                 SUM(CASE WHEN processed_at IS NULL AND claimed_by IS NOT NULL THEN 1 ELSE 0 END) AS leased_unmarked
          FROM outbox_events`
      ).pipe(
        Effect.map(([row]): OutboxCounts => ({
          total: row?.total ?? 0,
          processed: row?.processed ?? 0,
          leasedUnmarked: row?.leased_unmarked ?? 0
        }))
      )
    )

  const workerEnv = {
    DATABASE_URL: dbUrl,
    EVENTS_NATS_URL: NATS_URL,
    EVENTS_NATS_STREAM: STREAM,
    EVENTS_NATS_SUBJECT: SUBJECT,
    OUTBOX_BATCH_SIZE: "50",
    OUTBOX_LEASE_SECONDS: "2",
    OUTBOX_PUBLISH_TIMEOUT_SECONDS: "1",
    OUTBOX_POLL_INTERVAL_SECONDS: "0.1"
  }

  beforeAll(async () => {
    nc = await connect({ servers: NATS_URL, name: "bookverse-outbox-test" }).catch((e: unknown) => {
      throw new Error(`NATS JetStream must run on ${NATS_URL} (.ci/run starts it): ${String(e)}`)
    })
    jsm = await nc.jetstreamManager()

    // The migrations job makes the schema, as a deployment's init step would.
    const migrated = await runToExit("src/bin/migrate.ts", { DATABASE_URL: dbUrl, LOG_LEVEL: "Info" })
    expect(migrated.code, migrated.output).toBe(0)
    expect(migrated.output).toContain("0002_outbox_leases")

    db = ManagedRuntime.make(
      Layer.provideMerge(
        Layer.provideMerge(OrderRepoLive, Layer.merge(OutboxLive, IdempotencyStoreLive)),
        SqliteClient.layer({ filename: join(dir.dir, "checkout.db") })
      )
    )
    // 500 confirmed orders, written as the saga writes them: PENDING, then CONFIRMED with its outbox row.
    await db.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const repo = yield* OrderRepo
        yield* sql.withTransaction(
          Effect.forEach(Array.from({ length: ORDERS }, (_, i) => i), (i) =>
            Effect.gen(function* () {
              const now = new Date(Date.UTC(2026, 10, 29, 12, 0, 0, i))
              const qty = (i % 3) + 1
              const item = OrderItem.make({
                bookId: BookId.make(randomUUID()),
                qty,
                unitPrice: Cents.make(1699),
                lineTotal: Cents.make(1699 * qty)
              })
              const order = Order.make({
                orderId: OrderId.make(randomUUID()),
                status: "CONFIRMED",
                total: item.lineTotal,
                currency: "USD",
                items: [item],
                createdAt: now
              })
              yield* repo.insertPending({
                orderId: order.orderId,
                userId: UserId.make(`reader-${i}`),
                idempotencyKey: null,
                items: order.items,
                total: order.total,
                createdAt: now,
                leaseUntil: now
              })
              const confirmed = yield* repo.confirm(
                order.orderId,
                { type: "order.created", aggregateId: order.orderId, payload: orderCreatedData(order, `reader-${i}`) },
                now
              )
              if (!confirmed) return yield* Effect.die(new Error(`order ${i} was not confirmed`))
            })
          )
        )
      })
    )
  }, 60_000)

  afterAll(async () => {
    await worker?.kill()
    await db?.dispose()
    await jsm?.streams.delete(STREAM).catch(() => false)
    await nc?.drain()
    dir.remove()
  })

  it(
    "500 confirmed orders give exactly 500 valid messages, none twice, across a SIGKILL between publish and mark",
    async () => {
      expect(await counts()).toEqual({ total: ORDERS, processed: 0, leasedUnmarked: 0 })

      // First worker: creates the stream, then kills itself with SIGKILL right after its 200th
      // publish was acknowledged and before that row is marked (the test hook).
      const crashed = await runToExit("src/bin/worker.ts", {
        ...workerEnv,
        PORT: String(await freePort()),
        HOST: "127.0.0.1",
        OUTBOX_TEST_CRASH_AFTER_PUBLISH: "200"
      })
      expect(crashed.signal, crashed.output).toBe("SIGKILL")
      const afterCrash = await counts()
      const inStream = (await jsm.streams.info(STREAM)).state.messages
      expect(inStream).toBeGreaterThanOrEqual(200)
      expect(afterCrash.processed).toBeLessThan(inStream) // published, never marked
      expect(afterCrash.leasedUnmarked).toBeGreaterThanOrEqual(1) // still leased to the dead worker

      // Second worker: takes over once the dead worker's leases end, sends everything left.
      worker = await startProcess("src/bin/worker.ts", workerEnv)
      const health = await waitFor(
        async () => {
          const body = decodeHealth(await (await fetch(`${worker?.url}/health`)).json())
          return body.outbox.pending === 0 ? body : undefined
        },
        30_000,
        "the outbox to drain"
      )
      expect(health.status).toBe("healthy")
      expect(health.outbox.lagSeconds).toBe(0)
      // The rows the dead worker had published but not marked were sent again, and JetStream
      // recognised them by Nats-Msg-Id.
      expect(health.events.duplicates).toBeGreaterThanOrEqual(inStream - afterCrash.processed)
      expect(health.events.published).toBe(ORDERS - afterCrash.processed)
      expect(await worker.stop()).toBe(0) // SIGTERM: a clean exit
      worker = undefined
      expect(await counts()).toEqual({ total: ORDERS, processed: ORDERS, leasedUnmarked: 0 })

      // Exactly 500 messages, one per outbox row, each a valid CloudEvent per the checked-in schema.
      const info = await jsm.streams.info(STREAM)
      expect(info.state.messages).toBe(ORDERS)
      const validate = contractValidator("order.created.schema.json")
      const ids = new Set<string>()
      const orders = new Set<string>()
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const msg = await jsm.streams.getMessage(STREAM, { seq })
        const json: unknown = JSON.parse(msg.string())
        expect(validate(json), JSON.stringify(validate.errors)).toBe(true)
        const event = decodeEvent(json)
        expect(msg.subject).toBe(SUBJECT)
        expect(msg.header.get("Nats-Msg-Id")).toBe(event.id)
        expect(msg.header.get("Content-Type")).toBe("application/cloudevents+json; charset=utf-8")
        ids.add(event.id)
        orders.add(event.data.orderId)
      }
      expect(ids.size).toBe(ORDERS)
      expect(orders.size).toBe(ORDERS)
      const outboxIds = await db.runPromise(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ id: string }>`SELECT id FROM outbox_events`)
      )
      expect(new Set(outboxIds.map((r) => r.id))).toEqual(ids)
    },
    120_000
  )
})
