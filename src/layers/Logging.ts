import { Cause, Config, ConfigError, Context, Effect, Either, FiberRef, FiberRefs, Inspectable, Layer, Logger, LogLevel, Option, Tracer } from "effect"

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

/** A value as a log line shows it: plain JSON values as they are, others by their `toJSON` (as Effect's structured logger). */
const jsonValue = (value: unknown): unknown => {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
      return value
    case "bigint":
    case "function":
    case "symbol":
      return String(value)
    default:
      return Inspectable.toJSON(value)
  }
}

/**
 * Standard output, written once per turn of the event loop: the lines logged during one turn go
 * out in one write (a write to a file or pipe is a synchronous system call in Node, and an order
 * logs two lines). ERROR and FATAL lines, and a buffer past 64 KiB, are written at once, and
 * whatever is buffered is written when the process exits; a process killed outright (SIGKILL)
 * loses at most the lines of its last turn.
 */
const stdoutLines = (() => {
  let buffered: Array<string> = []
  let size = 0
  let scheduled = false
  const flush = (): void => {
    scheduled = false
    if (buffered.length === 0) return
    const text = buffered.join("")
    buffered = []
    size = 0
    process.stdout.write(text)
  }
  process.on("exit", flush)
  return (line: string, urgent: boolean): void => {
    buffered.push(line)
    size += line.length
    if (urgent || size > 64 * 1024) return flush()
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }
})()

/**
 * One JSON object per line: `timestamp`, `level`, `message`, the annotations at the top level
 * (`correlationId`, `orderId`, …), `traceId` and `spanId` of the current span when tracing is on,
 * and `cause` when there is one. Written to standard output a turn of the event loop at a time.
 */
export const jsonTraceLogger = Logger.make(({ annotations, cause, context, date, logLevel, message }) => {
  const parts = Array.isArray(message) ? message : [message]
  const record: Record<string, unknown> = {
    timestamp: date.toISOString(),
    level: logLevel.label,
    message: parts.length === 1 ? jsonValue(parts[0]) : parts.map(jsonValue)
  }
  for (const [key, value] of annotations) record[key] = jsonValue(value)
  const span = Context.getOption(FiberRefs.getOrDefault(context, FiberRef.currentContext), Tracer.ParentSpan)
  if (Option.isSome(span) && span.value.traceId !== "noop") {
    record["traceId"] = span.value.traceId
    record["spanId"] = span.value.spanId
  }
  if (!Cause.isEmpty(cause)) record["cause"] = Cause.pretty(cause, { renderErrorCause: true })
  stdoutLines(`${JSON.stringify(record)}\n`, LogLevel.greaterThanEqual(logLevel, LogLevel.Error))
})

/** JSON log lines (`jsonTraceLogger`) at the level `LOG_LEVEL` asks for. */
export const LoggingLive = Layer.unwrapEffect(
  Effect.map(LogLevelConfig, (level) =>
    Layer.merge(Logger.replace(Logger.defaultLogger, jsonTraceLogger), Logger.minimumLogLevel(level))
  )
)
