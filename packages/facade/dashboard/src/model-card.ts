import { h, icon, ICONS, replaceChildren } from "./dom.js";
import { counted, formatBytes, formatDuration, formatParameters, formatPercent, formatRate } from "./format.js";
import { isDownloaded, type ModelJson } from "./types.js";

export interface CardActions {
  pull(model: ModelJson): void;
}

/** The Hub badge: "downloaded" covers ready and loaded (the Local tab tells them apart). */
export function hubBadge(model: ModelJson): { label: string; tone: string } {
  if (isDownloaded(model)) return { label: "downloaded", tone: "done" };
  if (model.state === "downloading") return { label: "downloading", tone: "busy" };
  if (model.state === "failed") return { label: "failed", tone: "bad" };
  if (model.state === "unsupported") return { label: "unsupported", tone: "idle" };
  return { label: "available", tone: "idle" };
}

let nextCardId = 0;
const PENDING_MAX_MS = 15_000;

/**
 * One Model Hub card. `update` patches it in place: a progress tick changes a few numbers and the bar's
 * width (so it animates) instead of rebuilding the card, and keyboard focus survives state changes.
 */
export class ModelCard {
  readonly el: HTMLElement;
  private model: ModelJson;
  private readonly titleId = `card-title-${nextCardId++}`;
  private readonly badge = h("span", { class: "badge" });
  private readonly title = h("h3", { class: "card-title", id: this.titleId });
  private readonly meta = h("p", { class: "card-meta" });
  private readonly description = h("p", { class: "card-desc" });
  private readonly facts = h("dl", { class: "facts" });
  private readonly tags = h("ul", { class: "tags", "aria-label": "Tags" });
  private readonly hub = h("p", { class: "hub-stats" });
  private readonly action = h("div", { class: "card-action", tabindex: -1 });
  private renderedActionState = "";
  private pending = false;
  private pendingTimer: ReturnType<typeof setTimeout> | undefined;
  private progress: { bar: HTMLElement; fill: HTMLElement; percent: HTMLElement; detail: HTMLElement; bytes: HTMLElement } | null = null;

  constructor(model: ModelJson, private readonly actions: CardActions) {
    this.model = model;
    this.el = h(
      "article",
      { class: "card", "aria-labelledby": this.titleId },
      h("header", { class: "card-head" }, this.title, this.badge),
      this.meta,
      this.description,
      this.facts,
      this.tags,
      this.hub,
      this.action,
    );
    this.render(true);
  }

  get id(): string {
    return this.model.id;
  }

  update(model: ModelJson): void {
    if (model === this.model) return;
    const stateChanged = model.state !== this.model.state;
    this.model = model;
    if (stateChanged && this.pending) {
      clearTimeout(this.pendingTimer);
      this.pending = false;
    }
    this.render(false);
  }

  /**
   * The Pull request is on its way: show it on the button until the first state change (or, if the
   * node reports none, for at most PENDING_MAX_MS, so the button never stays disabled).
   */
  setPending(pending: boolean): void {
    clearTimeout(this.pendingTimer);
    this.pending = pending;
    if (pending) this.pendingTimer = setTimeout(() => this.setPending(false), PENDING_MAX_MS);
    this.renderAction();
  }

  matches(terms: string[]): boolean {
    if (terms.length === 0) return true;
    const m = this.model;
    const haystack = [m.display_name, m.id, m.repo, ...m.tags].join("\n").toLowerCase();
    return terms.every((t) => haystack.includes(t));
  }

  private render(first: boolean): void {
    const m = this.model;
    const name = m.display_name || m.id;
    this.el.dataset.modelId = m.id;
    this.el.dataset.state = m.state;
    this.title.textContent = name;
    const badge = hubBadge(m);
    this.badge.className = `badge badge-${badge.tone}`;
    this.badge.textContent = badge.label;
    if (first || this.meta.textContent !== this.metaText()) this.meta.textContent = this.metaText();
    this.description.textContent = m.description || (m.origin === "registered" ? "Registered from Hugging Face." : "");
    this.description.hidden = this.description.textContent === "";
    this.renderFacts();
    replaceChildren(this.tags, ...m.tags.map((t) => h("li", { class: "tag", text: t })));
    this.tags.hidden = m.tags.length === 0;
    this.renderHub();
    this.renderAction();
  }

  private metaText(): string {
    const m = this.model;
    return [m.repo || m.id, m.quantization, formatParameters(m.parameter_count)].filter(Boolean).join(" · ");
  }

  private renderFacts(): void {
    const m = this.model;
    replaceChildren(
      this.facts,
      h("div", {}, h("dt", { text: "Size" }), h("dd", { text: formatBytes(m.size_bytes) })),
      h("div", {}, h("dt", { text: "Memory" }), h("dd", { text: formatBytes(m.required_memory_bytes) })),
    );
  }

  private renderHub(): void {
    const info = this.model.hub_info;
    if (!info) {
      this.hub.hidden = true;
      return;
    }
    this.hub.hidden = false;
    replaceChildren(
      this.hub,
      h(
        "span",
        { title: `${info.downloads.toLocaleString()} downloads on Hugging Face` },
        icon([...ICONS.download], "icon icon-sm"),
        counted(info.downloads, "download"),
      ),
      h("span", { title: `${info.likes.toLocaleString()} likes on Hugging Face` }, icon([...ICONS.heart], "icon icon-sm"), counted(info.likes, "like")),
    );
  }

  private renderAction(): void {
    const m = this.model;
    const state = this.pending && m.state !== "downloading" ? "pending" : m.state;
    if (state === "downloading") {
      if (this.renderedActionState !== "downloading") this.buildProgress();
      this.updateProgress();
    } else if (this.renderedActionState !== state || state === "failed") {
      const hadFocus = this.action.contains(document.activeElement);
      this.progress = null;
      replaceChildren(this.action, ...this.actionContent(state));
      if (hadFocus) (this.action.querySelector("button") ?? this.action).focus();
    }
    this.renderedActionState = state;
  }

  private actionContent(state: string): Node[] {
    const m = this.model;
    const name = m.display_name || m.id;
    if (state === "pending") {
      return [h("button", { class: "btn btn-primary", type: "button", disabled: true, "aria-label": `Pull ${name}` }, "Starting…")];
    }
    if (m.state === "unsupported") {
      const reason = m.unsupported_reason ?? "This node cannot run this model.";
      return [h("p", { class: "unsupported-note", role: "note" }, icon([...ICONS.alert], "icon icon-sm"), h("span", { title: reason, text: reason }))];
    }
    if (isDownloaded(m)) {
      return [
        h("p", { class: "done" }, icon([...ICONS.check], "icon icon-check"), m.state === "loaded" ? "Downloaded · loaded in memory" : "Downloaded"),
      ];
    }
    const pull = h("button", { class: "btn btn-primary", type: "button", "aria-label": `Pull ${name}` }, icon([...ICONS.download]), m.state === "failed" ? "Retry pull" : "Pull");
    pull.addEventListener("click", () => this.actions.pull(this.model));
    if (m.state === "failed") {
      const reason = m.failure_reason ?? "The download failed.";
      return [h("p", { class: "failure", role: "note" }, icon([...ICONS.alert], "icon icon-sm"), h("span", { class: "failure-text", title: reason, text: reason })), pull];
    }
    return [pull];
  }

  private buildProgress(): void {
    const hadFocus = this.action.contains(document.activeElement);
    const name = this.model.display_name || this.model.id;
    const fill = h("div", { class: "progress-fill" });
    const bar = h("div", { class: "progress", role: "progressbar", "aria-label": `Downloading ${name}`, "aria-valuemin": 0, "aria-valuemax": 100 }, fill);
    const percent = h("strong", { class: "progress-percent" });
    const detail = h("span", { class: "progress-detail" });
    const bytes = h("span", { class: "progress-bytes" });
    this.progress = { bar, fill, percent, detail, bytes };
    replaceChildren(this.action, bar, h("p", { class: "progress-text" }, percent, detail), h("p", { class: "progress-sub" }, bytes));
    if (hadFocus) this.action.focus();
  }

  private updateProgress(): void {
    const p = this.model.progress;
    const view = this.progress;
    if (!view) return;
    if (!p || p.total_bytes <= 0) {
      view.bar.classList.add("indeterminate");
      view.bar.removeAttribute("aria-valuenow");
      view.percent.textContent = "Starting…";
      view.detail.textContent = "";
      view.bytes.textContent = "";
      return;
    }
    view.bar.classList.remove("indeterminate");
    const pct = Math.floor(Math.min(Math.max(p.fraction, 0), 1) * 100);
    view.bar.setAttribute("aria-valuenow", String(pct));
    view.bar.setAttribute("aria-valuetext", `${pct}%`);
    view.fill.style.setProperty("width", `${Math.min(Math.max(p.fraction, 0), 1) * 100}%`);
    view.percent.textContent = formatPercent(p.fraction);
    const remaining = p.bytes_per_second > 0 ? (p.total_bytes - p.completed_bytes) / p.bytes_per_second : NaN;
    view.detail.textContent = ` · ${formatRate(p.bytes_per_second)} · ${Number.isFinite(remaining) ? `${formatDuration(remaining)} left` : "estimating…"}`;
    view.bytes.textContent = `${formatBytes(p.completed_bytes)} of ${formatBytes(p.total_bytes)}${p.current_file ? ` · ${p.current_file}` : ""}`;
  }
}
