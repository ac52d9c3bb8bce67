import {
  Cause,
  Chunk,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Metric,
  Ref,
  Schedule
} from "effect"
import { toCloudEvent } from "../domain/Events.js"
import { EventPublisher, EventPublishFailed, type PublisherTarget } from "./EventPublisher.js"
import { type ClaimedEvent, Outbox, type OutboxStats } from "./Outbox.js"

/**
 * How long a failed event waits before its next attempt: `base` after the first failure, doubling
 * after each further one, at most `max`; with `jitter`, each wait is spread over 80%..120% so that
 * events that failed together (a broker outage) do not all come back at once.
 */
export interface BackoffPolicy {
  readonly base: Duration.Duration
  readonly max: Duration.Duration
  readonly jitter: boolean
}

/** The `Schedule` behind `BackoffPolicy`: exponential from `base` (factor 2), capped at `max`, optionally jittered. */
export const backoffSchedule = (policy: BackoffPolicy): Schedule.Schedule<Duration.Duration> => {
  const capped = Schedule.exponential(policy.base, 2).pipe(Schedule.union(Schedule.spaced(policy.max)))
  return Schedule.delays(policy.jitter ? Schedule.jittered(capped) : capped)
}

/**
 * The wait after an event's `failures`-th failed attempt (1 or more), stepping `backoffSchedule`
 * that many times: with base 1 s and max 60 s, 1 s, 2 s, 4 s, ... 32 s, 60 s, 60 s.
 */
export const retryDelay = (policy: BackoffPolicy, failures: number): Effect.Effect<Duration.Duration> =>
  Schedule.run(backoffSchedule(policy), 0, Array.from({ length: Math.max(1, failures) }, (_, i) => i)).pipe(
    Effect.map((delays) => Chunk.last(delays).pipe((last) => (last._tag === "Some" ? last.value : policy.base)))
  )

/** The worker's tuning (see `WorkerConfig` in `src/layers/Worker.ts` for the variables and defaults). */
export interface OutboxWorkerOptions {
  /** Names this worker in `claimed_by` and in logs; unique per process. */
  readonly workerId: string
  /** Rows claimed (and published concurrently) per batch. */
  readonly batchSize: number
  /** How long a claimed row stays this worker's; must exceed `publishTimeout` with room to mark it. */
  readonly lease: Duration.Duration
  /** Deadline of one publish attempt. */
  readonly publishTimeout: Duration.Duration
  /** Pause between polls when the last batch was not full. */
  readonly pollInterval: Duration.Duration
  /** Attempts before a row is parked dead (the last failed attempt parks it). */
  readonly maxAttempts: number
  readonly backoff: BackoffPolicy
  /** How often the counters are logged. */
  readonly statsInterval: Duration.Duration
  /**
   * Test hook: runs after each successful publish, before the row is marked, with the number of
   * events this worker has published so far (the crash test kills the process here).
   */
  readonly afterPublish?: (event: ClaimedEvent, published: number) => Effect.Effect<void>
}

/** What this worker did since it started. */
export interface WorkerCounters {
  /** Events delivered and marked. */
  readonly published: number
  /** Attempts that failed and were scheduled again. */
  readonly failed: number
  /** Rows this worker parked dead. */
  readonly dead: number
  /** Deliveries the destination recognised as already had (redeliveries after a crash). */
  readonly duplicates: number
  /** Rows whose lease had passed to another worker before this one could mark them. */
  readonly leaseLost: number
}

/** The worker's counters with the outbox's state and lag, as `/health` and the logs show them. */
export interface WorkerStatus {
  readonly workerId: string
  readonly publisher: PublisherTarget["kind"]
  readonly events: WorkerCounters
  readonly outbox: OutboxStats & {
    /** Seconds since the oldest pending row was written (0 when none is pending). */
    readonly lagSeconds: number
  }
}

/** What one batch did. */
export interface BatchReport {
  readonly claimed: number
  readonly published: number
  readonly failed: number
  readonly dead: number
}

/**
 * The outbox worker (ARCHITECTURE.md, "Persistence": `outbox_events`): claims due rows in
 * batches, publishes them through `EventPublisher`, marks them delivered; a failure is retried
 * after `BackoffPolicy`'s wait, and after `maxAttempts` the row is parked dead and logged as an
 * error. Delivery is at least once; the event id lets the destination drop duplicates.
 */
export class OutboxWorker extends Context.Tag("bookverse/OutboxWorker")<
  OutboxWorker,
  {
    readonly workerId: string
    /** Claims one batch and delivers it; database failures are defects. */
    readonly runBatch: Effect.Effect<BatchReport>
    /** Counters, outbox state and lag; database failures are defects. */
    readonly status: Effect.Effect<WorkerStatus>
  }
>() {}

const publishedTotal = Metric.counter("outbox_events_published_total", { incremental: true, description: "order events delivered" })
const failedTotal = Metric.counter("outbox_events_failed_total", { incremental: true, description: "failed delivery attempts, retried later" })
const deadTotal = Metric.counter("outbox_events_dead_total", { incremental: true, description: "events parked dead after too many attempts" })
const lagSeconds = Metric.gauge("outbox_lag_seconds", { description: "age of the oldest undelivered event" })

const nowDate = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

const causeMessage = (cause: Cause.Cause<EventPublishFailed>): string =>
  Cause.failureOption(cause).pipe((f) => (f._tag === "Some" ? f.value.reason : Cause.pretty(cause).split("\n")[0] ?? "defect"))

/**
 * Builds the worker on the `Outbox` and `EventPublisher` in context. One batch claims up to
 * `batchSize` rows (at most one per order, see `Outbox.claimDue`), publishes them concurrently,
 * each within `publishTimeout`, and marks each as it is answered.
 */
export const makeOutboxWorker = (options: OutboxWorkerOptions) =>
  Effect.gen(function* () {
    const outbox = yield* Outbox
    const publisher = yield* EventPublisher
    const counters = yield* Ref.make<WorkerCounters>({ published: 0, failed: 0, dead: 0, duplicates: 0, leaseLost: 0 })
    const count = (key: keyof WorkerCounters) => Ref.updateAndGet(counters, (c) => ({ ...c, [key]: c[key] + 1 }))
    const timeoutSeconds = Duration.toSeconds(options.publishTimeout)

    /** What became of one claimed row. */
    type Outcome = "published" | "failed" | "dead" | "leaseLost" | "error"

    const leaseLost = Effect.zipRight(
      count("leaseLost"),
      Effect.logWarning("outbox row was claimed by another worker before this one could mark it")
    ).pipe(Effect.as<Outcome>("leaseLost"))

    const park = (row: ClaimedEvent, reason: string) =>
      Effect.gen(function* () {
        if (!(yield* outbox.markDead(row.id, options.workerId, reason, yield* nowDate))) return yield* leaseLost
        yield* count("dead")
        yield* Metric.increment(deadTotal)
        yield* Effect.logError("outbox event parked dead").pipe(
          Effect.annotateLogs({ attempts: row.attempts + 1, reason })
        )
        return "dead" satisfies Outcome
      })

    const retryLater = (row: ClaimedEvent, reason: string) =>
      Effect.gen(function* () {
        const failures = row.attempts + 1
        if (failures >= options.maxAttempts) return yield* park(row, reason)
        const wait = yield* retryDelay(options.backoff, failures)
        const retryAt = new Date((yield* Clock.currentTimeMillis) + Duration.toMillis(wait))
        if (!(yield* outbox.markFailed(row.id, options.workerId, reason, retryAt))) return yield* leaseLost
        yield* count("failed")
        yield* Metric.increment(failedTotal)
        yield* Effect.logWarning("outbox event delivery failed; will retry").pipe(
          Effect.annotateLogs({ attempts: failures, retryAt: retryAt.toISOString(), reason })
        )
        return "failed" satisfies Outcome
      })

    /** Delivers one claimed row. */
    const deliver = (row: ClaimedEvent) =>
      Effect.gen(function* () {
        const event = toCloudEvent(row)
        // A payload outside the contract (or a type without one) cannot get better by waiting.
        if (Either.isLeft(event)) return yield* park(row, event.left)
        const sent = yield* publisher.publish(event.right).pipe(
          Effect.timeoutFail({
            duration: options.publishTimeout,
            onTimeout: () => new EventPublishFailed({ eventId: row.id, reason: `no answer within ${timeoutSeconds}s` })
          }),
          Effect.exit
        )
        if (Exit.isFailure(sent)) return yield* retryLater(row, causeMessage(sent.cause))
        const { published } = yield* count("published")
        if (sent.value.duplicate) yield* count("duplicates")
        if (options.afterPublish !== undefined) yield* options.afterPublish(row, published)
        if (!(yield* outbox.markPublished(row.id, options.workerId, yield* nowDate))) return yield* leaseLost
        yield* Metric.increment(publishedTotal)
        yield* Effect.logDebug("outbox event published").pipe(Effect.annotateLogs("duplicate", sent.value.duplicate))
        return "published" satisfies Outcome
      }).pipe(
        // A database failure on one row must not cut its siblings' publishes short; the row stays
        // leased and is tried again when the lease ends.
        Effect.catchAllCause((cause) =>
          Effect.logError("outbox row not settled; it will be retried after its lease").pipe(
            Effect.annotateLogs("cause", Cause.pretty(cause)),
            Effect.as<Outcome>("error")
          )
        ),
        Effect.annotateLogs({ eventId: row.id, orderId: row.aggregateId, eventType: row.type })
      )

    const runBatch = Effect.gen(function* () {
      const now = yield* nowDate
      const rows = yield* outbox.claimDue({
        worker: options.workerId,
        limit: options.batchSize,
        now,
        leaseUntil: new Date(now.getTime() + Duration.toMillis(options.lease))
      })
      const outcomes = yield* Effect.forEach(rows, deliver, { concurrency: "unbounded" })
      const counted = (outcome: Outcome) => outcomes.filter((o) => o === outcome).length
      const report: BatchReport = {
        claimed: rows.length,
        published: counted("published"),
        failed: counted("failed"),
        dead: counted("dead")
      }
      if (rows.length > 0) yield* Effect.logDebug("outbox batch done").pipe(Effect.annotateLogs({ ...report }))
      return report
    }).pipe(Effect.withSpan("OutboxWorker.runBatch"))

    const status = Effect.gen(function* () {
      const stats = yield* outbox.stats
      const now = yield* Clock.currentTimeMillis
      const lag = stats.oldestPendingAt === undefined ? 0 : Math.max(0, (now - stats.oldestPendingAt.getTime()) / 1000)
      yield* Metric.set(lagSeconds, lag)
      return {
        workerId: options.workerId,
        publisher: publisher.target.kind,
        events: yield* Ref.get(counters),
        outbox: { ...stats, lagSeconds: lag }
      } satisfies WorkerStatus
    })

    return OutboxWorker.of({ workerId: options.workerId, runBatch, status })
  })

/**
 * Runs `worker` until `stop` completes: batch after batch while batches come back full, then a
 * pause of `pollInterval` (cut short by `stop`). A batch that fails (the database is away) is
 * logged and the loop goes on after the pause. A batch in flight when `stop` completes is
 * finished, never cut: its rows are leased, and cutting would hold them until the lease ends.
 */
export const runWorkerLoop = (
  worker: Context.Tag.Service<OutboxWorker>,
  options: Pick<OutboxWorkerOptions, "batchSize" | "pollInterval">,
  stop: Deferred.Deferred<void>
): Effect.Effect<void> => {
  const drain = worker.runBatch.pipe(
    Effect.repeat({
      while: (report) => (report.claimed >= options.batchSize ? Effect.map(Deferred.isDone(stop), (done) => !done) : false)
    }),
    Effect.catchAllCause((cause) =>
      Effect.logError("outbox batch failed").pipe(Effect.annotateLogs("cause", Cause.pretty(cause)))
    )
  )
  const pause = Effect.raceFirst(Effect.sleep(options.pollInterval), Deferred.await(stop))
  return Effect.zipRight(drain, pause).pipe(Effect.repeat({ until: () => Deferred.isDone(stop) }), Effect.asVoid)
}

const logStatus = (worker: Context.Tag.Service<OutboxWorker>, message: string) =>
  worker.status.pipe(
    Effect.flatMap((s) =>
      Effect.logInfo(message).pipe(
        Effect.annotateLogs({
          workerId: s.workerId,
          publisher: s.publisher,
          ...s.events,
          pending: s.outbox.pending,
          deadInOutbox: s.outbox.dead,
          lagSeconds: s.outbox.lagSeconds
        })
      )
    ),
    Effect.catchAllCause((cause) => Effect.logWarning("outbox status unavailable").pipe(Effect.annotateLogs("cause", Cause.pretty(cause))))
  )

/**
 * The worker as a running process part: builds `OutboxWorker`, logs its counters every
 * `statsInterval`, and runs the loop until the layer closes. Closing (SIGTERM) lets the batch in
 * flight finish (waiting at most the lease), then logs the final counters. With no destination
 * configured it says so once and leaves every event in the outbox.
 */
export const OutboxWorkerLive = (options: OutboxWorkerOptions): Layer.Layer<OutboxWorker, never, Outbox | EventPublisher> =>
  Layer.scoped(
    OutboxWorker,
    Effect.gen(function* () {
      const worker = yield* makeOutboxWorker(options)
      const publisher = yield* EventPublisher
      yield* logStatus(worker, "outbox worker started").pipe(Effect.annotateLogs({ target: publisher.target }))
      if (options.afterPublish !== undefined) yield* Effect.logWarning("outbox afterPublish test hook armed")
      yield* logStatus(worker, "outbox worker stats").pipe(
        Effect.repeat(Schedule.spaced(options.statsInterval)),
        Effect.delay(options.statsInterval),
        Effect.interruptible,
        Effect.forkScoped
      )
      if (publisher.target.kind === "none") {
        yield* Effect.logWarning(
          "no event destination configured (set EVENTS_NATS_URL or EVENTS_WEBHOOK_URL): events stay in the outbox"
        )
        return worker
      }
      const stop = yield* Deferred.make<void>()
      // Forked interruptible explicitly: `acquireRelease`'s acquire is uninterruptible, and a fiber
      // forked there would inherit that (its poll pause could then not be cut short).
      yield* Effect.acquireRelease(Effect.forkDaemon(Effect.interruptible(runWorkerLoop(worker, options, stop))), (fiber) =>
        Effect.gen(function* () {
          yield* Deferred.succeed(stop, undefined)
          const finished = yield* Fiber.await(fiber).pipe(Effect.timeout(options.lease), Effect.option)
          if (finished._tag === "None") {
            yield* Effect.logWarning("outbox batch did not finish within the lease; stopping it")
            yield* Fiber.interrupt(fiber)
          }
          yield* logStatus(worker, "outbox worker stopped")
        })
      )
      return worker
    })
  )
