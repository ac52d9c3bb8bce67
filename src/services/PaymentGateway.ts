import { Config, Context, Effect, Layer, Random, Schema } from "effect"
import type { Cents } from "../domain/Money.js"
import { tracedWhereBuilt } from "./Tracing.js"

/** The gateway declined the charge; nothing was charged. */
export class PaymentDeclined extends Schema.TaggedError<PaymentDeclined>()("PaymentDeclined", {
  reason: Schema.String
}) {}

/** A successful charge. */
export interface PaymentReceipt {
  /** The gateway's reference for the charge. */
  readonly reference: string
}

/** A charge request: the order it pays for and the amount in cents (USD). */
export interface ChargeRequest {
  readonly orderId: string
  readonly amount: Cents
}

/**
 * Takes payment for an order. `charge` succeeds with a receipt or fails with `PaymentDeclined`.
 * A real provider would be called with the order id as its idempotency key.
 */
export class PaymentGateway extends Context.Tag("bookverse/PaymentGateway")<
  PaymentGateway,
  { readonly charge: (request: ChargeRequest) => Effect.Effect<PaymentReceipt, PaymentDeclined> }
>() {}

/**
 * A simulated gateway: approves a charge with probability `successRatio` (0.0 to 1.0) using
 * Effect's `Random`, so tests can seed it (at 1.0 every charge is approved without a roll).
 * Traced when tracing is on where it is built (`tracedWhereBuilt`).
 */
export const makeSimulatedPaymentGateway = (successRatio: number) =>
  Effect.map(tracedWhereBuilt, (traced) => {
    const approve = (request: ChargeRequest) => Effect.succeed({ reference: `sim_${request.orderId}` })
    return PaymentGateway.of({
      charge: (request: ChargeRequest) =>
        (successRatio >= 1
          ? approve(request)
          : Effect.flatMap(Random.next, (roll) =>
              roll < successRatio ? approve(request) : Effect.fail(new PaymentDeclined({ reason: "card declined (simulated)" }))
            )
        ).pipe(traced("PaymentGateway.charge"))
    })
  })

/** `PAYMENT_SUCCESS_RATIO`: 1.0 by default, 0.0 to 1.0; anything else stops start-up. */
export const PaymentSuccessRatio = Config.number("PAYMENT_SUCCESS_RATIO").pipe(
  Config.validate({ message: "must be a number from 0.0 to 1.0", validation: (n) => n >= 0 && n <= 1 }),
  Config.withDefault(1)
)

/** The simulated gateway configured by `PAYMENT_SUCCESS_RATIO`. */
export const SimulatedPaymentGatewayLive = Layer.effect(
  PaymentGateway,
  Effect.flatMap(PaymentSuccessRatio, makeSimulatedPaymentGateway)
)
