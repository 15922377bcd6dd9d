import { h, icon, ICONS, replaceChildren } from "./dom.js";
import { formatBytes, formatDate } from "./format.js";
import { isDownloaded, type ModelJson } from "./types.js";

export interface LocalActions {
  delete(model: ModelJson): void;
}

/** The Local tab: models on this node's disk (ready or loaded), with their path and a Delete button. */
export class LocalView {
  constructor(
    private readonly list: HTMLElement,
    private readonly empty: HTMLElement,
    private readonly actions: LocalActions,
  ) {}

  update(models: ModelJson[]): void {
    const local = models.filter(isDownloaded);
    this.empty.hidden = local.length > 0;
    const focusedId = (document.activeElement as HTMLElement | null)?.closest<HTMLElement>("[data-model-id]")?.dataset.modelId;
    const inList = this.list.contains(document.activeElement);
    const unchanged =
      this.list.children.length === local.length && local.every((m, i) => (this.list.children[i] as HTMLElement).dataset.key === keyOf(m));
    if (unchanged) return;
    replaceChildren(this.list, ...local.map((m) => this.row(m)));
    if (inList) {
      const again = focusedId ? this.list.querySelector<HTMLElement>(`[data-model-id="${CSS.escape(focusedId)}"] button`) : null;
      if (again) again.focus();
      else this.focusFirst();
    }
  }

  /** Focus on the first row's button, or on the empty state when no model is left. */
  focusFirst(): void {
    (this.list.querySelector<HTMLElement>("button") ?? this.empty).focus();
  }

  private deleteButton(m: ModelJson, name: string): HTMLElement {
    const remove = h("button", { class: "btn btn-danger", type: "button", "aria-label": `Delete ${name}` }, icon([...ICONS.trash]), "Delete");
    remove.addEventListener("click", () => this.actions.delete(m));
    return remove;
  }

  private row(m: ModelJson): HTMLElement {
    const name = m.display_name || m.id;
    const titleId = `local-title-${m.id.replace(/[^a-zA-Z0-9_-]/g, "_")}`;
    const loaded = m.state === "loaded";
    // Found in an extra model directory (LLMLB_EXTRA_MODEL_DIRS): used in place, never deleted by the node.
    const inPlace = m.local?.source === "local";
    const verified = m.local?.verified ? "sha256 of every file" : inPlace ? "hashed; the catalog has no sha256 to compare" : "size only (no digest from the source)";
    return h(
      "article",
      { class: "local-row", "data-model-id": m.id, "data-key": keyOf(m), "aria-labelledby": titleId },
      h(
        "div",
        { class: "local-head" },
        h("h3", { class: "card-title", id: titleId, text: name }),
        h("span", { class: `badge ${loaded ? "badge-busy" : "badge-done"}`, text: loaded ? "loaded" : "not loaded" }),
      ),
      h("p", { class: "card-meta", text: [m.id, m.quantization].filter(Boolean).join(" · ") }),
      h(
        "dl",
        { class: "facts" },
        h("div", {}, h("dt", { text: "Size on disk" }), h("dd", { text: formatBytes(m.local?.size_on_disk_bytes ?? m.size_bytes) })),
        h("div", {}, h("dt", { text: "Memory" }), h("dd", { text: formatBytes(m.required_memory_bytes) })),
        h("div", {}, h("dt", { text: "Context" }), h("dd", { text: m.context_length ? `${m.context_length.toLocaleString()} tokens` : "node default" })),
        h("div", {}, h("dt", { text: "Downloaded" }), h("dd", { text: formatDate(m.local?.downloaded_at ?? null) })),
        h("div", {}, h("dt", { text: "Source" }), h("dd", { text: inPlace ? "extra model directory" : m.local?.source || "—" })),
        h("div", {}, h("dt", { text: "Verified" }), h("dd", { class: "verified", text: verified })),
      ),
      h("div", { class: "path" }, h("span", { class: "path-label", text: "Path" }), h("code", { class: "path-value", text: m.local?.path ?? "—" })),
      h("div", { class: "local-action" }, inPlace ? h("p", { class: "in-place", text: "Used in place: the node never deletes files in an extra model directory." }) : this.deleteButton(m, name)),
    );
  }
}

/** What a row shows; a row is rebuilt only when this changes. */
const keyOf = (m: ModelJson) =>
  JSON.stringify([m.id, m.display_name, m.state, m.local?.path, m.local?.size_on_disk_bytes, m.local?.downloaded_at, m.local?.source, m.local?.verified, m.required_memory_bytes, m.context_length]);
