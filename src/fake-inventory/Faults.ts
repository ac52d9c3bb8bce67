/**
 * Scriptable faults for the fake inventory: the rule and fault schemas of the `/__faults` admin
 * API and `FAKE_INVENTORY_FAULT_RULES`, and the injector that decides, per request, which fault
 * (if any) to act out. Faults model what INVENTORY_CONTRACT.md says checkout must assume: "Any
 * call can be slow, fail with 5xx, be refused, or time out after the service applied it."
 */
import { randomUUID } from "node:crypto"
import { Schema } from "effect"

/** The inventory routes a rule can target; "*" in a rule matches all of them. */
export const RouteName = Schema.Literal("getStock", "adjust", "transactions", "list", "health")

/** A route of the fake: GET stock, POST adjust, GET transactions, GET list, GET /health. */
export type RouteName = typeof RouteName.Type

/**
 * One fault. `none`: serve normally (a gap in a sequence). `latency`: wait `ms` milliseconds, then
 * serve normally. `status`: answer `status` with a `{"detail": ...}` body, nothing applied.
 * `reset`: read the request, then drop the connection with a TCP RST, nothing applied. `refuse`:
 * drop the connection (RST) at once, before reading the body, nothing applied (a true
 * ECONNREFUSED needs the port closed). `hang`: answer nothing for `ms` milliseconds (default
 * 60000), nothing applied, then drop the connection. `applyThenFail`: apply the request (an
 * adjust is applied and its transaction recorded), then answer 500 (`then: "500"`) or drop the
 * connection (`then: "drop"`).
 */
export const Fault = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("none") }),
  Schema.Struct({ kind: Schema.Literal("latency"), ms: Schema.Int.pipe(Schema.between(0, 600_000)) }),
  Schema.Struct({ kind: Schema.Literal("status"), status: Schema.Int.pipe(Schema.between(400, 599)) }),
  Schema.Struct({ kind: Schema.Literal("reset") }),
  Schema.Struct({ kind: Schema.Literal("refuse") }),
  Schema.Struct({ kind: Schema.Literal("hang"), ms: Schema.optional(Schema.Int.pipe(Schema.between(0, 3_600_000))) }),
  Schema.Struct({ kind: Schema.Literal("applyThenFail"), then: Schema.Literal("500", "drop") })
)

/** A decoded {@link Fault}. */
export type Fault = typeof Fault.Type

/** The kinds of fault that are counted when injected (every kind but `none`). */
export type FaultKind = Exclude<Fault["kind"], "none">

/** How long a `hang` without `ms` holds the request, in milliseconds. */
export const defaultHangMs = 60_000

/**
 * A fault rule. It matches requests to `route` ("*": any route) and, when `bookId` is given, only
 * those for that book. Exactly one of:
 * - `sequence`: each matching request consumes the next fault; when all are consumed the rule is
 *   exhausted;
 * - `fault` with optional `probability` (0..1, default 1): each matching request gets the fault
 *   with that probability.
 * `times` (optional) caps how many faults the rule injects (`none` entries do not count).
 */
export const FaultRule = Schema.Struct({
  route: Schema.Union(RouteName, Schema.Literal("*")),
  bookId: Schema.optional(Schema.UUID),
  sequence: Schema.optional(Schema.Array(Fault).pipe(Schema.minItems(1))),
  probability: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  fault: Schema.optional(Fault),
  times: Schema.optional(Schema.Int.pipe(Schema.positive()))
}).pipe(
  Schema.filter((rule) => {
    if ((rule.sequence === undefined) === (rule.fault === undefined)) {
      return "a rule needs exactly one of \"sequence\" or \"fault\""
    }
    if (rule.probability !== undefined && rule.fault === undefined) {
      return "\"probability\" goes with \"fault\", not with \"sequence\""
    }
    return undefined
  })
)

/** A decoded {@link FaultRule}. */
export type FaultRule = typeof FaultRule.Type

/** The JSON array of rules in `FAKE_INVENTORY_FAULT_RULES`. */
export const FaultRules = Schema.parseJson(Schema.Array(FaultRule))

/** A rule as `GET /__faults` lists it: the rule, its id, and how far it has got. */
export interface RuleView {
  readonly id: string
  readonly rule: FaultRule
  /** Matching requests seen so far. */
  readonly matched: number
  /** Faults injected so far (not counting `none`). */
  readonly injected: number
  /** True when the rule will not fire again (sequence consumed or `times` reached). */
  readonly exhausted: boolean
}

interface RuleState {
  readonly id: string
  readonly rule: FaultRule
  matched: number
  injected: number
}

const isExhausted = (state: RuleState): boolean =>
  (state.rule.sequence !== undefined && state.matched >= state.rule.sequence.length) ||
  (state.rule.times !== undefined && state.injected >= state.rule.times)

/**
 * Holds the fault rules and decides each request's fault. Rules are consulted in the order they
 * were added; the first one that matches the request and is not exhausted decides it, and later
 * rules are not consulted. `random` (default `Math.random`) draws for `probability`.
 */
export class FaultInjector {
  private states: Array<RuleState> = []

  constructor(rules: ReadonlyArray<FaultRule> = [], private readonly random: () => number = Math.random) {
    for (const rule of rules) this.add(rule)
  }

  /** Adds a rule after the existing ones; returns its id (for the listing). */
  add(rule: FaultRule): string {
    const id = randomUUID()
    this.states.push({ id, rule: { ...rule, ...(rule.bookId === undefined ? {} : { bookId: rule.bookId.toLowerCase() }) }, matched: 0, injected: 0 })
    return id
  }

  /** Removes every rule; returns how many there were. */
  clear(): number {
    const n = this.states.length
    this.states = []
    return n
  }

  /** The rules with their progress, in consultation order. */
  list(): ReadonlyArray<RuleView> {
    return this.states.map((s) => ({
      id: s.id,
      rule: s.rule,
      matched: s.matched,
      injected: s.injected,
      exhausted: isExhausted(s)
    }))
  }

  /**
   * The fault for a request to `route` about `bookId` (canonical id, or undefined when the request
   * names none), advancing the deciding rule. Undefined or `none`: serve normally.
   */
  decide(route: RouteName, bookId: string | undefined): Fault | undefined {
    for (const state of this.states) {
      const rule = state.rule
      if (isExhausted(state)) continue
      if (rule.route !== "*" && rule.route !== route) continue
      if (rule.bookId !== undefined && rule.bookId !== bookId) continue
      let fault: Fault | undefined
      if (rule.sequence !== undefined) {
        fault = rule.sequence[state.matched]
      } else if (rule.fault !== undefined) {
        const p = rule.probability ?? 1
        fault = p >= 1 || this.random() < p ? rule.fault : undefined
      }
      state.matched++
      if (fault !== undefined && fault.kind !== "none") state.injected++
      return fault
    }
    return undefined
  }
}
