import { Api, ApiError } from "./api.js";
import { DeleteDialog } from "./dialogs/delete-dialog.js";
import { keyPrompt } from "./dialogs/key-dialog.js";
import { RegisterDialog } from "./dialogs/register-dialog.js";
import { byId } from "./dom.js";
import { formatBytes } from "./format.js";
import { ChatView } from "./chat-view.js";
import { HubView } from "./hub-view.js";
import { LoadedView } from "./loaded-view.js";
import { LiveFeed, type FeedStatus } from "./live-feed.js";
import { LocalView } from "./local-view.js";
import { ModelStore } from "./model-store.js";
import { Tabs } from "./tabs.js";
import { Toasts } from "./toasts.js";
import { isDownloaded, type ModelJson } from "./types.js";

const nameOf = (m: ModelJson) => m.display_name || m.id;
const messageOf = (err: unknown) => (err instanceof ApiError || err instanceof Error ? err.message : String(err));

// API paths are relative to the page, so the dashboard also works behind a path-prefix proxy.
const api = new Api(new URL(".", location.href), keyPrompt());
const store = new ModelStore();
const toasts = new Toasts(byId("toasts", HTMLElement));
const search = byId("search", HTMLInputElement);

const hub = new HubView(
  { grid: byId("hub-grid", HTMLElement), search, summary: byId("hub-summary", HTMLElement), empty: byId("hub-empty", HTMLElement) },
  {
    async pull(model) {
      const card = hub.card(model.id);
      card?.setPending(true);
      try {
        const res = await api.pull(model.id);
        // The card itself shows the download; only a pull that had nothing to do is worth a note.
        if (res.model) store.apply({ kind: "model", model: res.model });
        if (res.status === "ready") toasts.note(`${nameOf(model)} is already downloaded.`);
      } catch (err) {
        card?.setPending(false);
        toasts.error(`Could not pull ${nameOf(model)}: ${messageOf(err)}`);
      }
    },
  },
);

const deleteDialog = new DeleteDialog(api, (model, res) => {
  if (res.model) store.apply({ kind: "model", model: res.model });
  else store.apply({ kind: "removed", id: model.id });
  toasts.note(`Deleted ${nameOf(model)}${res.freed_bytes > 0 ? `, freed ${formatBytes(res.freed_bytes)}` : ""}.`);
}, () => local.focusFirst());

const local = new LocalView(byId("local-list", HTMLElement), byId("local-empty", HTMLElement), { delete: (m) => deleteDialog.open(m) });

const loaded = new LoadedView(
  api,
  {
    rows: byId("loaded-rows", HTMLElement),
    table: byId("loaded-table", HTMLElement),
    empty: byId("loaded-empty", HTMLElement),
    budgetText: byId("loaded-budget-text", HTMLElement),
    budgetBar: byId("loaded-budget-bar", HTMLElement),
    budgetFill: byId("loaded-budget-fill", HTMLElement),
    count: byId("loaded-count", HTMLElement),
  },
  (message) => toasts.error(message),
);

const chat = new ChatView(
  api,
  {
    model: byId("chat-model", HTMLSelectElement),
    temperature: byId("chat-temperature", HTMLInputElement),
    maxTokens: byId("chat-max-tokens", HTMLInputElement),
    system: byId("chat-system", HTMLTextAreaElement),
    log: byId("chat-log", HTMLElement),
    empty: byId("chat-empty", HTMLElement),
    form: byId("chat-form", HTMLFormElement),
    message: byId("chat-message", HTMLTextAreaElement),
    send: byId("chat-send", HTMLButtonElement),
    stop: byId("chat-stop", HTMLButtonElement),
    clear: byId("chat-clear", HTMLButtonElement),
    stats: byId("chat-stats", HTMLElement),
  },
  () => void loaded.refresh(),
);

const tabs = new Tabs(byId("tabs", HTMLElement), (tab) => loaded.show(tab === "loaded"));
byId("local-go-hub", HTMLButtonElement).addEventListener("click", () => {
  tabs.select("hub", true);
  search.focus();
});

const registerDialog = new RegisterDialog(api, (res) => {
  const model = res.model;
  if (!model) return;
  store.apply({ kind: "model", model });
  tabs.select("hub", true);
  search.value = "";
  search.dispatchEvent(new Event("input"));
  const card = hub.card(model.id);
  card?.el.scrollIntoView({ block: "nearest", behavior: "smooth" });
  card?.el.classList.add("flash");
  toasts.note([`Registered ${nameOf(model)} (${model.id}).`, ...res.warnings].join(" "));
});
byId("register-open", HTMLButtonElement).addEventListener("click", () => registerDialog.open());

const hubCount = byId("hub-count", HTMLElement);
const localCount = byId("local-count", HTMLElement);
store.subscribe(() => {
  const models = store.all();
  hub.update(models);
  local.update(models);
  chat.updateModels(models);
  hubCount.textContent = String(models.length);
  localCount.textContent = String(models.filter(isDownloaded).length);
});

// Connection status in the header.
const status = byId("feed-status", HTMLElement);
const statusText = byId("feed-status-text", HTMLElement);
const unlock = byId("unlock", HTMLButtonElement);
unlock.addEventListener("click", () => void api.requestKey());
const STATUS_TEXT: Record<FeedStatus, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  locked: "API key needed",
};
const feed = new LiveFeed(api, store, (s, detail) => {
  status.dataset.status = s;
  statusText.textContent = STATUS_TEXT[s];
  status.title = detail ? `${STATUS_TEXT[s]} (${detail})` : STATUS_TEXT[s];
  unlock.hidden = s !== "locked";
  if (!store.loaded) {
    const summary = byId("hub-summary", HTMLElement);
    summary.textContent = s === "locked" ? "Enter the node’s API key to see its models." : s === "reconnecting" ? "Cannot reach the node; retrying…" : "Loading models…";
  }
});
feed.start();

// "/" focuses the search box (unless the user is typing somewhere).
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target as HTMLElement | null;
  if (target?.closest("input, textarea, select, dialog, [contenteditable]")) return;
  event.preventDefault();
  tabs.select("hub", true);
  search.focus();
});
