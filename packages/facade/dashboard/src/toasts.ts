import { h } from "./dom.js";

/**
 * Short status messages ("Pull started", errors) in a live region, so screen readers hear them too.
 * Errors stay until dismissed; notes fade after a few seconds.
 */
export class Toasts {
  constructor(private readonly region: HTMLElement) {}

  note(message: string): void {
    this.show(message, "note", 5000);
  }

  error(message: string): void {
    this.show(message, "error", 0);
  }

  private show(message: string, tone: "note" | "error", ttlMs: number): void {
    const close = h("button", { class: "toast-close", type: "button", "aria-label": "Dismiss" }, "×");
    const toast = h("div", { class: `toast toast-${tone}`, role: tone === "error" ? "alert" : "status" }, h("span", { text: message }), close);
    close.addEventListener("click", () => toast.remove());
    this.region.append(toast);
    while (this.region.children.length > 4) this.region.firstElementChild?.remove();
    if (ttlMs > 0) setTimeout(() => toast.remove(), ttlMs);
  }
}
