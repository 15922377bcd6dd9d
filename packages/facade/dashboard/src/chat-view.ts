import type { Api } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { counted } from "./format.js";
import { isDownloaded, type ModelJson } from "./types.js";

export interface ChatElements {
  model: HTMLSelectElement;
  temperature: HTMLInputElement;
  maxTokens: HTMLInputElement;
  system: HTMLTextAreaElement;
  log: HTMLElement;
  empty: HTMLElement;
  form: HTMLFormElement;
  message: HTMLTextAreaElement;
  send: HTMLButtonElement;
  stop: HTMLButtonElement;
  clear: HTMLButtonElement;
  stats: HTMLElement;
}

interface Turn {
  role: "user" | "assistant";
  content: string;
}

/**
 * The Chat tab: a conversation with a downloaded text-generation model over /v1/chat/completions,
 * streamed into the page with tokens/s, a Stop button that ends generation on the node, an
 * optional system prompt, the temperature and an optional limit of answer tokens. The conversation lives in the page only.
 */
export class ChatView {
  private turns: Turn[] = [];
  private running: AbortController | undefined;

  constructor(
    private readonly api: Api,
    private readonly el: ChatElements,
    private readonly onAnswered: () => void,
  ) {
    el.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.send();
    });
    el.message.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        void this.send();
      }
    });
    el.stop.addEventListener("click", () => this.running?.abort());
    el.clear.addEventListener("click", () => {
      this.running?.abort();
      this.turns = [];
      replaceChildren(el.log);
      el.stats.textContent = "";
      this.updateEmpty();
    });
  }

  /** Keeps the model list to the downloaded text-generation models, keeping the choice. */
  updateModels(models: ModelJson[]): void {
    const usable = models.filter((m) => isDownloaded(m) && m.capabilities.includes("text-generation"));
    const chosen = this.el.model.value;
    const key = usable.map((m) => m.id).join("\n");
    if (this.el.model.dataset.key !== key) {
      this.el.model.dataset.key = key;
      replaceChildren(this.el.model, ...usable.map((m) => h("option", { value: m.id, text: m.display_name ? `${m.display_name} (${m.id})` : m.id })));
      if (usable.some((m) => m.id === chosen)) this.el.model.value = chosen;
    }
    this.el.send.disabled = usable.length === 0 || this.running !== undefined;
    this.updateEmpty();
  }

  private updateEmpty(): void {
    this.el.empty.hidden = this.el.log.querySelector(".bubble") !== null;
  }

  private async send(): Promise<void> {
    const text = this.el.message.value.trim();
    const model = this.el.model.value;
    if (!text || !model || this.running) return;
    const temperature = Number(this.el.temperature.value);
    if (!Number.isFinite(temperature) || temperature < 0 || temperature > 2) {
      this.el.stats.textContent = "Temperature must be between 0 and 2.";
      this.el.temperature.focus();
      return;
    }
    const maxTokens = this.el.maxTokens.value.trim() === "" ? undefined : Number(this.el.maxTokens.value);
    if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens >= 1)) {
      this.el.stats.textContent = "Max tokens must be a whole number of at least 1, or empty.";
      this.el.maxTokens.focus();
      return;
    }
    this.el.message.value = "";
    this.turns.push({ role: "user", content: text });
    this.el.log.append(bubble("user", text));
    const answer = bubble("assistant", "");
    const body = answer.querySelector<HTMLElement>(".bubble-text")!;
    answer.classList.add("streaming");
    this.el.log.append(answer);
    this.updateEmpty();
    answer.scrollIntoView({ block: "end" });

    const system = this.el.system.value.trim();
    const messages = [...(system ? [{ role: "system", content: system }] : []), ...this.turns];
    const controller = new AbortController();
    this.running = controller;
    this.setRunning(true);
    let content = "";
    let tokens = 0;
    let firstAt = 0;
    const started = performance.now();
    try {
      for await (const chunk of this.api.chat({ model, messages, temperature, ...(maxTokens ? { max_tokens: maxTokens } : {}) }, controller.signal)) {
        const delta = chunk.choices[0]?.delta.content ?? "";
        if (delta) {
          if (firstAt === 0) firstAt = performance.now();
          content += delta;
          body.textContent = content;
          answer.scrollIntoView({ block: "end" });
        }
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
        else this.el.stats.textContent = firstAt === 0 ? "Waiting for the first token…" : "Generating…";
      }
      this.el.stats.textContent = statsText(tokens, started, firstAt);
    } catch (err) {
      if (controller.signal.aborted) {
        this.el.stats.textContent = "Stopped.";
        answer.classList.add("stopped");
      } else {
        answer.classList.add("failed");
        answer.append(h("p", { class: "bubble-error", role: "alert", text: err instanceof Error ? err.message : String(err) }));
        this.el.stats.textContent = "";
      }
    } finally {
      answer.classList.remove("streaming");
      if (!content && (answer.classList.contains("failed") || controller.signal.aborted)) {
        // Unanswered, so not part of the conversation: the question is marked and goes back into the box.
        this.turns.pop();
        answer.previousElementSibling?.classList.add("unsent");
        if (!this.el.message.value) this.el.message.value = text;
      } else {
        if (!content) {
          // The model ended its answer at once: the turn stays in the conversation, and says so.
          body.textContent = "(no text: the model ended its answer at once)";
          answer.classList.add("empty-answer");
        }
        this.turns.push({ role: "assistant", content });
      }
      this.updateEmpty();
      this.running = undefined;
      this.setRunning(false);
      this.onAnswered();
    }
  }

  private setRunning(running: boolean): void {
    this.el.stop.hidden = !running;
    this.el.send.disabled = running || this.el.model.options.length === 0;
    if (!running) this.el.message.focus();
  }
}

function bubble(role: Turn["role"], text: string): HTMLElement {
  return h(
    "article",
    { class: `bubble bubble-${role}`, "data-role": role },
    h("p", { class: "bubble-role", text: role === "user" ? "You" : "Assistant" }),
    h("div", { class: "bubble-text", text }),
  );
}

/** "12 tokens · 48.0 tokens/s · first token after 35 ms": the rate counts the tokens after the first. */
function statsText(tokens: number, started: number, firstAt: number): string {
  if (tokens === 0 || firstAt === 0) return counted(tokens, "token");
  const seconds = (performance.now() - started) / 1000;
  const generating = (performance.now() - firstAt) / 1000;
  const rate = tokens > 1 && generating > 0.001 ? (tokens - 1) / generating : tokens / seconds;
  return `${tokens} tokens · ${rate.toFixed(1)} tokens/s · first token after ${Math.round(firstAt - started)} ms`;
}
