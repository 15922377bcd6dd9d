import type { ModelJson } from "./types.js";

export type ModelChange = { kind: "model"; model: ModelJson } | { kind: "removed"; id: string };

/**
 * The page's copy of the catalog: a full list, then live changes. While a list is being (re)loaded,
 * changes are held back and applied on top of it, so nothing that happened meanwhile is lost.
 */
export class ModelStore {
  private readonly models = new Map<string, ModelJson>();
  private order: string[] = [];
  private held: ModelChange[] | null = null;
  private readonly listeners = new Set<() => void>();
  loaded = false;

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  all(): ModelJson[] {
    return this.order.map((id) => this.models.get(id)).filter((m): m is ModelJson => m !== undefined);
  }

  get(id: string): ModelJson | undefined {
    return this.models.get(id);
  }

  /** Starts holding changes back (call before fetching the list). */
  holdChanges(): void {
    this.held ??= [];
  }

  /** Replaces everything with a fresh list, then applies the changes held back meanwhile. */
  replaceAll(models: ModelJson[]): void {
    this.models.clear();
    for (const m of models) this.models.set(m.id, m);
    this.order = models.map((m) => m.id);
    const held = this.held ?? [];
    this.held = null;
    for (const change of held) this.applyQuietly(change);
    this.loaded = true;
    this.emit();
  }

  /** Stops holding back without a list (the reload failed): apply what was held. */
  releaseHeld(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const change of held) this.applyQuietly(change);
    if (held.length > 0) this.emit();
  }

  apply(change: ModelChange): void {
    if (this.held) {
      this.held.push(change);
      return;
    }
    this.applyQuietly(change);
    this.emit();
  }

  private applyQuietly(change: ModelChange): void {
    if (change.kind === "removed") {
      if (this.models.delete(change.id)) this.order = this.order.filter((id) => id !== change.id);
      return;
    }
    if (!this.models.has(change.model.id)) this.order.push(change.model.id);
    this.models.set(change.model.id, change.model);
  }

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}
