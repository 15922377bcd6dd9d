/** What the store holds and sources supply: a model, or a LoRA adapter. */
export type ArtifactKind = "model" | "adapter";

export const ARTIFACT_KINDS: readonly ArtifactKind[] = ["model", "adapter"];
