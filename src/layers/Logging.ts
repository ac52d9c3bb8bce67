import { Config, ConfigError, Context, Effect, Either, FiberRef, FiberRefs, Layer, Logger, LogLevel, Option, Tracer } from "effect"

const LEVELS: Record<string, LogLevel.LogLevel> = {
  ALL: LogLevel.All,
  TRACE: LogLevel.Trace,
  DEBUG: LogLevel.Debug,
  INFO: LogLevel.Info,
  WARN: LogLevel.Warning,
  WARNING: LogLevel.Warning,
  ERROR: LogLevel.Error,
  FATAL: LogLevel.Fatal,
  NONE: LogLevel.None,
  OFF: LogLevel.None
}

/** `LOG_LEVEL` (INFO), any case: TRACE, DEBUG, INFO, WARN (or WARNING), ERROR, FATAL, NONE. */
export const LogLevelConfig: Config.Config<LogLevel.LogLevel> = Config.string("LOG_LEVEL").pipe(
  Config.mapOrFail((raw) => {
    const level = LEVELS[raw.trim().toUpperCase()]
    return level === undefined
      ? Either.left(ConfigError.InvalidData([], `must be one of ${Object.keys(LEVELS).join(", ")}, not ${JSON.stringify(raw)}`))
      : Either.right(level)
  }),
  Config.withDefault(LogLevel.Info)
)

/**
 * One JSON object per line: `timestamp`, `level`, `message`, the annotations at the top level
 * (`correlationId`, `orderId`, …), `traceId` and `spanId` of the current span when tracing is on,
 * and `cause` when there is one.
 */
export const jsonTraceLogger = Logger.make((options) => {
  const structured = Logger.structuredLogger.log(options)
  const record: Record<string, unknown> = {
    timestamp: structured.timestamp,
    level: structured.logLevel,
    message: structured.message,
    ...structured.annotations
  }
  const span = Context.getOption(FiberRefs.getOrDefault(options.context, FiberRef.currentContext), Tracer.ParentSpan)
  if (Option.isSome(span) && span.value.traceId !== "noop") {
    record["traceId"] = span.value.traceId
    record["spanId"] = span.value.spanId
  }
  if (structured.cause !== undefined) record["cause"] = structured.cause
  process.stdout.write(`${JSON.stringify(record)}\n`)
})

/** JSON log lines (`jsonTraceLogger`) at the level `LOG_LEVEL` asks for. */
export const LoggingLive = Layer.unwrapEffect(
  Effect.map(LogLevelConfig, (level) =>
    Layer.merge(Logger.replace(Logger.defaultLogger, jsonTraceLogger), Logger.minimumLogLevel(level))
  )
)
