export { ERROR_DOMAIN, REASONS, type Reason } from "./reasons.js";
export {
  LlmlbError,
  isLlmlbError,
  isAbortError,
  toConnectError,
  fromConnectError,
  errorInfoOf,
  type ErrorMetadata,
} from "./llmlb-error.js";
export { capabilityMissing, modelNotSupported, modelNotReady, modelUnsupported, adapterNotFound, toolsUnsupported, invalidModelOutput, noRankingHead, readOnlyCopy, loraAdapterNotModel, repositoryFileName } from "./model-errors.js";
export {
  AUTH_HELP,
  authRequired,
  insufficientScope,
  invalidRequestTarget,
  requestTooLarge,
  tooManyStreams,
  hostNotAllowed,
  originNotAllowed,
} from "./security-errors.js";
export { describeExit, engineCrashed, loadCrashBackoff, loadCrashedTwice, runnerStartFailed, type RunnerExit } from "./runner-errors.js";
export { MAX_JSON_DEPTH, bodyTooDeep, invalidField, nestsDeeperThan, parseJsonField, serviceNotFound, unknownMethod } from "./request-errors.js";
export { diskFull, localDiskError, notWritable, reservationsLockTimeout } from "./disk-errors.js";
export { homeNotWritable, nodeDbNotWritable } from "./home-errors.js";
