import type { Api } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { formatBytes, formatDuration } from "./format.js";
import type { LoadedListJson, LoadedModelJson } from "./types.js";

export interface LoadedElements {
  rows: HTMLElement;
  table: HTMLElement;
  empty: HTMLElement;
  budgetText: HTMLElement;
  budgetBar: HTMLElement;
  budgetFill: HTMLElement;
  count: HTMLElement;
}

const REFRESH_MS = 1_000;

/**
 * The Loaded tab: what is in memory (GET /v0/loaded), memory against the budget, context, slots
 * busy, queue and time left before an idle model unloads, with an Unload button per model. It
 * refreshes every second while shown (the countdown and the slots move), and on `refresh()`.
 */
export class LoadedView {
  private timer: number | undefined;
  private last: LoadedListJson = { models: [], memory_budget_bytes: 0 };

  constructor(
    private readonly api: Api,
    private readonly el: LoadedElements,
    private readonly onError: (message: string) => void,
  ) {}

  show(visible: boolean): void {
    window.clearInterval(this.timer);
    this.timer = undefined;
    if (!visible) return;
    void this.refresh();
    this.timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
  }

  async refresh(): Promise<void> {
    try {
      this.last = await this.api.listLoaded();
    } catch {
      return; // the header's feed status already says when the node cannot be reached
    }
    this.render();
  }

  private render(): void {
    const { models, memory_budget_bytes: budget } = this.last;
    const used = models.reduce((sum, m) => sum + m.memory_bytes, 0);
    const percent = budget > 0 ? Math.min(100, Math.round((used / budget) * 100)) : 0;
    this.el.budgetText.textContent = `${formatBytes(used)} of ${formatBytes(budget)} budget (${percent}%)`;
    this.el.budgetBar.setAttribute("aria-valuenow", String(percent));
    this.el.budgetFill.style.width = `${percent}%`;
    this.el.count.textContent = models.length > 0 ? String(models.length) : "";
    this.el.table.hidden = models.length === 0;
    this.el.empty.hidden = models.length > 0;
    const focusedId = (document.activeElement as HTMLElement | null)?.closest<HTMLElement>("[data-model-id]")?.dataset.modelId;
    replaceChildren(this.el.rows, ...models.map((m) => this.row(m)));
    if (focusedId) this.el.rows.querySelector<HTMLElement>(`[data-model-id="${CSS.escape(focusedId)}"] button`)?.focus();
  }

  private row(m: LoadedModelJson): HTMLElement {
    const unload = h("button", { class: "btn", type: "button", "aria-label": `Unload ${m.id}` }, "Unload");
    const busy = m.active_requests > 0;
    unload.disabled = busy;
    if (busy) unload.title = "Serving requests; unload it when they finish";
    unload.addEventListener("click", () => void this.unload(m.id, unload));
    return h(
      "tr",
      { "data-model-id": m.id },
      h("th", { scope: "row", class: "loaded-id", text: m.id }),
      h("td", { text: formatBytes(m.memory_bytes) }),
      h("td", { text: `${m.context_length.toLocaleString()} tokens` }),
      h("td", { class: busy ? "busy" : "", text: `${m.active_requests} / ${m.parallel_slots}` }),
      h("td", { text: String(m.queued_requests) }),
      h("td", { class: "expires", text: expiresIn(m) }),
      h("td", { class: "row-action" }, unload),
    );
  }

  private async unload(id: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      await this.api.unload(id);
    } catch (err) {
      this.onError(`Could not unload ${id}: ${err instanceof Error ? err.message : String(err)}`);
    }
    await this.refresh();
  }
}

function expiresIn(m: LoadedModelJson): string {
  if (m.active_requests > 0) return "in use";
  if (!m.expires_at) return "kept loaded";
  return formatDuration(Math.max(0, (Date.parse(m.expires_at) - Date.now()) / 1000));
}
