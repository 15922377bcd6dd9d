export type TabName = "hub" | "local" | "loaded" | "chat";

const TAB_NAMES: readonly TabName[] = ["hub", "local", "loaded", "chat"];
const asTab = (name: string | undefined): TabName => TAB_NAMES.find((t) => t === name) ?? "hub";

/**
 * WAI-ARIA tabs: one tab stop for the tab list (roving tabindex), Left/Right/Home/End move between
 * tabs, the URL hash (#hub, #local, #loaded, #chat) keeps the choice across reloads and links.
 */
export class Tabs {
  private readonly tabs: HTMLButtonElement[];

  constructor(
    private readonly list: HTMLElement,
    private readonly onChange: (tab: TabName) => void = () => undefined,
  ) {
    this.tabs = [...list.querySelectorAll<HTMLButtonElement>('[role="tab"]')];
    for (const tab of this.tabs) tab.addEventListener("click", () => this.select(nameOf(tab), true));
    list.addEventListener("keydown", (event) => this.onKey(event));
    window.addEventListener("hashchange", () => this.select(this.fromHash(), false));
    this.select(this.fromHash(), false);
  }

  select(name: TabName, updateHash: boolean): void {
    for (const tab of this.tabs) {
      const selected = nameOf(tab) === name;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      const panel = document.getElementById(tab.getAttribute("aria-controls") ?? "");
      if (panel) panel.hidden = !selected;
    }
    if (updateHash && location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
    this.onChange(name);
  }

  private fromHash(): TabName {
    return asTab(location.hash.slice(1));
  }

  private onKey(event: KeyboardEvent): void {
    const current = this.tabs.findIndex((t) => t === document.activeElement);
    if (current === -1) return;
    let next = current;
    if (event.key === "ArrowRight") next = (current + 1) % this.tabs.length;
    else if (event.key === "ArrowLeft") next = (current - 1 + this.tabs.length) % this.tabs.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = this.tabs.length - 1;
    else return;
    event.preventDefault();
    const tab = this.tabs[next];
    if (!tab) return;
    this.select(nameOf(tab), true);
    tab.focus();
  }
}

const nameOf = (tab: HTMLElement): TabName => asTab(tab.dataset.tab);
