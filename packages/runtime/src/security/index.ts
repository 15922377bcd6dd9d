export { SCOPES, scopeAllows, rpcAccess, httpAccess, isRpcSubscription, isHttpSubscription, type Scope, type Access } from "./access-policy.js";
export { normalisedPath } from "./request-target.js";
export { KeyRing, parseKeysFile, type ApiKey, type Authentication } from "./key-ring.js";
export { HostPolicy, hostName } from "./host-policy.js";
export { StreamCaps } from "./stream-caps.js";
export { TlsMaterial, type TlsFiles, type TlsOptions } from "./tls-material.js";
export { rpcRejection, type RawAnswer } from "./rpc-rejection.js";
export { ListenerGuard, type RequestFacts, type Admission, type AdmissionOutcome, type ListenerLimits } from "./listener-guard.js";
