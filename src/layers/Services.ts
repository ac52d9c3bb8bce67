import { Layer } from "effect"
import { CheckoutLive } from "../services/Checkout.js"
import { HealthProbeLive } from "../services/Health.js"
import { IdempotencyStoreLive } from "../services/IdempotencyStore.js"
import { InventoryClientLive } from "../services/InventoryClient.js"
import { OrderRepoLive } from "../services/OrderRepo.js"
import { OutboxLive } from "../services/Outbox.js"
import { SimulatedPaymentGatewayLive } from "../services/PaymentGateway.js"
import { InventoryHttpClientLive } from "./HttpClient.js"

/** The repositories on the `SqlClient` in context. */
export const RepositoriesLive = Layer.mergeAll(
  OrderRepoLive.pipe(Layer.provide(OutboxLive)),
  IdempotencyStoreLive,
  OutboxLive,
  HealthProbeLive
)

/** The live inventory client on a pooled undici HTTP client. */
export const InventoryLive = InventoryClientLive.pipe(Layer.provide(InventoryHttpClientLive))

/**
 * The saga with its live collaborators (HTTP inventory, simulated payment, SQL repositories),
 * plus the repositories and health probe themselves; needs a `SqlClient`.
 */
export const CheckoutServicesLive = Layer.provideMerge(
  CheckoutLive,
  Layer.mergeAll(RepositoriesLive, InventoryLive, SimulatedPaymentGatewayLive)
)
