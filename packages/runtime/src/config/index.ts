export { loadConfig, redactConfig, displayConfig, flagName, type NodeConfig, type Origin, type LoadConfigOptions } from "./load-config.js";
export { SETTINGS, GPU_CHOICES, type GpuChoice, type SettingKey, type Settings } from "./settings.js";
export { readConfigFile, describeAjvErrors, type SourceEntry, type ConfigFile } from "./config-file.js";
export { parseSize, formatBytes, parseDuration, formatDuration, parseInteger, MIN_CONTEXT_LENGTH, MAX_CONTEXT_LENGTH } from "./parse.js";
export { findUp } from "./find-up.js";
