import { Config, ConfigError, Effect, Either, Layer, Logger, LogLevel } from "effect"

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
  Config.withDefault("INFO"),
  Config.mapOrFail((raw) => {
    const level = LEVELS[raw.trim().toUpperCase()]
    return level === undefined
      ? Either.left(ConfigError.InvalidData([], `must be one of ${Object.keys(LEVELS).join(", ")}, not ${JSON.stringify(raw)}`))
      : Either.right(level)
  })
)

/** JSON log lines (Effect `Logger.json`) at the level `LOG_LEVEL` asks for. */
export const LoggingLive = Layer.unwrapEffect(
  Effect.map(LogLevelConfig, (level) => Layer.merge(Logger.json, Logger.minimumLogLevel(level)))
)
