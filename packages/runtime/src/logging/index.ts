export { createLogger, silentLogger, type Logger, type LoggerOptions } from "./logger.js";
export { createRedactor, redactDeep } from "./redact.js";
export { LogRing, type LogEntry } from "./log-ring.js";
