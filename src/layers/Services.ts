import { Effect, Layer } from "effect"
import { CheckoutLive } from "../services/Checkout.js"
import { CrashPointsLive } from "../services/CrashPoints.js"
import { RecoveryLive } from "../services/Recovery.js"
import { HealthProbeLive } from "../services/Health.js"
import { IdempotencyStoreLive } from "../services/IdempotencyStore.js"
import { CircuitBreaker, CircuitBreakerLive, withCircuitBreaker } from "../services/CircuitBreaker.js"
import {
  InventoryClient,
  InventoryClientConfig,
  InventoryHealthLive,
  makeInventoryClient
} from "../services/InventoryClient.js"
import { OrderRepoLive } from "../services/OrderRepo.js"
import { OutboxLive } from "../services/Outbox.js"
import { SimulatedPaymentGatewayLive } from "../services/PaymentGateway.js"
import { UndiciInventoryTransport } from "../services/InventoryTransport.js"

/** The repositories on the `SqlClient` in context. */
export const RepositoriesLive = Layer.mergeAll(
  OrderRepoLive.pipe(Layer.provide(Layer.merge(OutboxLive, IdempotencyStoreLive))),
  IdempotencyStoreLive,
  OutboxLive
)

/**
 * The live inventory client (options from `InventoryClientConfig`) on a pooled undici transport,
 * its calls observed by the circuit breaker; provides the breaker too.
 */
export const InventoryLive = Layer.effect(
  InventoryClient,
  Effect.gen(function* () {
    const client = yield* Effect.flatMap(InventoryClientConfig, makeInventoryClient)
    return withCircuitBreaker(client, yield* CircuitBreaker)
  })
).pipe(
  Layer.merge(InventoryHealthLive),
  Layer.provide(UndiciInventoryTransport),
  Layer.provideMerge(CircuitBreakerLive)
)

/**
 * The saga and recovery with their live collaborators (HTTP inventory behind a circuit breaker,
 * simulated payment, SQL repositories), plus those collaborators and the health probe; needs a
 * `SqlClient`.
 */
export const CheckoutServicesLive = Layer.provideMerge(
  Layer.mergeAll(CheckoutLive, HealthProbeLive, RecoveryLive),
  Layer.mergeAll(RepositoriesLive, InventoryLive, SimulatedPaymentGatewayLive, CrashPointsLive)
)
