export {
  definePlugin,
  type ArtifactKind,
  type ArtifactSpec,
  type RemoteFile,
  type LocateResult,
  type SourceContext,
  type SourceProvider,
  type SourcePlugin,
} from "./contract.js";
