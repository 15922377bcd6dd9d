import { ModelCard, type CardActions } from "./model-card.js";
import type { ModelJson } from "./types.js";

export interface HubElements {
  grid: HTMLElement;
  search: HTMLInputElement;
  summary: HTMLElement;
  empty: HTMLElement;
}

/** Splits the search box into lower-case terms; every term must match (name, id, repo or a tag). */
export const searchTerms = (text: string): string[] => text.toLowerCase().split(/\s+/).filter(Boolean);

/** The Model Hub tab: one card per model, kept by id, filtered as the user types. */
export class HubView {
  private readonly cards = new Map<string, ModelCard>();
  private models: ModelJson[] = [];
  private loaded = false;

  constructor(
    private readonly els: HubElements,
    private readonly actions: CardActions,
  ) {
    els.search.addEventListener("input", () => this.applyFilter());
  }

  card(id: string): ModelCard | undefined {
    return this.cards.get(id);
  }

  update(models: ModelJson[]): void {
    this.models = models;
    this.loaded = true;
    const seen = new Set<string>();
    let previous: Element | null = null;
    for (const model of models) {
      seen.add(model.id);
      let card = this.cards.get(model.id);
      if (card) card.update(model);
      else {
        card = new ModelCard(model, this.actions);
        this.cards.set(model.id, card);
      }
      // Keep DOM order = list order, moving only what is out of place.
      const expected: Element | null = previous ? previous.nextElementSibling : this.els.grid.firstElementChild;
      if (expected !== card.el) this.els.grid.insertBefore(card.el, expected);
      previous = card.el;
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.el.remove();
        this.cards.delete(id);
      }
    }
    this.applyFilter();
  }

  private applyFilter(): void {
    const text = this.els.search.value.trim();
    const terms = searchTerms(text);
    let shown = 0;
    for (const card of this.cards.values()) {
      const match = card.matches(terms);
      card.el.hidden = !match;
      if (match) shown++;
    }
    const total = this.models.length;
    if (!this.loaded) return;
    this.els.summary.textContent = terms.length === 0 ? `${total} ${total === 1 ? "model" : "models"}` : `${shown} of ${total} models match “${text}”`;
    this.els.empty.hidden = shown > 0 || total === 0;
    this.els.empty.textContent = total === 0 ? "" : `No model matches “${text}”. Try a name such as “qwen” or a tag such as “chat”.`;
  }
}
