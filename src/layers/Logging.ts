import { Config, Effect, Layer, Logger, LogLevel } from "effect"

/** `LOG_LEVEL` (INFO): ALL, TRACE, DEBUG, INFO, WARNING, ERROR, FATAL or NONE. */
export const LogLevelConfig = Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info))

/** JSON log lines (Effect `Logger.json`) at the level `LOG_LEVEL` asks for. */
export const LoggingLive = Layer.unwrapEffect(
  Effect.map(LogLevelConfig, (level) => Layer.merge(Logger.json, Logger.minimumLogLevel(level)))
)
