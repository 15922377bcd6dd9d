/**
 * The dashboard's Chat and Loaded tabs in Debian's Chromium (headless, playwright-core) against a
 * real node serving the generated tiny model: chat streams an answer, Stop ends a generation, the
 * Loaded view shows the model with its context, slots and expiry, and Unload empties it.
 * Its screenshots are the README's (see `screenshot` in helpers/chromium.ts).
 */
import fs from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyModelBytes } from "../../../testkit/gguf/tiny-gguf.js";
import { resolveModel, startTestNode, tempDir, type TestNode } from "../../../testkit/node/index.js";
import { startTinyWorld, tinyEntry, TINY_CHAT_ID, type TinyWorld } from "../../../testkit/world/tiny-world.js";
import { launchChromium, screenshot, type Browser } from "./helpers/chromium.js";
import { ensureDashboardBuilt } from "./helpers/dashboard-build.js";

/** An embedding model found in an extra model directory (not a chat model, so the Chat tab's list stays as it is). */
const IN_PLACE_ID = "tiny-embed-in-place";
const IN_PLACE_FILE = "tiny-embed-in-place.gguf";
const inPlaceBytes = tinyModelBytes({ embedding: true, seed: 5 });

describe("dashboard Chat and Loaded tabs in Chromium", () => {
  let world: TinyWorld;
  let node: TestNode;
  let browser: Browser;
  let page: Page;
  const extraDir = tempDir("llmlb-extra-");
  const pageErrors: string[] = [];
  const loadedIds = async () =>
    ((await (await fetch(`${node.httpUrl}/v0/loaded`)).json()) as { models: Array<{ id: string; active_requests: number }> }).models;

  beforeAll(async () => {
    ensureDashboardBuilt();
    fs.writeFileSync(path.join(extraDir.dir, IN_PLACE_FILE), inPlaceBytes);
    world = await startTinyWorld({ extraModels: [{ ...tinyEntry(IN_PLACE_ID, IN_PLACE_FILE, inPlaceBytes, ["embeddings"]), sha256: undefined }] });
    [node, browser] = await Promise.all([startTestNode({ ...world.env, LLMLB_PARALLELISM: "2", LLMLB_EXTRA_MODEL_DIRS: extraDir.dir }), launchChromium()]);
    await resolveModel(node, TINY_CHAT_ID);
    await resolveModel(node, IN_PLACE_ID);
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.setDefaultTimeout(15_000);
    page.on("pageerror", (err) => pageErrors.push(String(err)));
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await node?.stop();
    await world?.close();
    extraDir.cleanup();
  });

  it("streams a chat answer with its tokens/s, using the system prompt and temperature", async () => {
    await page.goto(`${node.httpUrl}/#chat`);
    const model = page.getByLabel("Model", { exact: true });
    await expect.poll(() => model.locator("option").allTextContents()).toEqual([`Tiny ${TINY_CHAT_ID} (${TINY_CHAT_ID})`]);
    await page.getByLabel("System prompt").fill("You answer in one short line.");
    await page.getByLabel("Temperature").fill("0");
    await page.getByLabel("Max tokens").fill("24");
    await page.getByLabel("Message").fill("hello world");
    await page.getByRole("button", { name: "Send" }).click();

    const answer = page.locator('.bubble[data-role="assistant"]').last();
    await expect.poll(() => answer.getAttribute("class"), { timeout: 45_000 }).not.toContain("streaming");
    expect((await answer.locator(".bubble-text").textContent())?.length).toBeGreaterThan(0);
    expect(await page.locator("#chat-stats").textContent()).toMatch(/^([1-9]|1\d|2[0-4]) tokens · \d+\.\d tokens\/s · first token after \d+ ms$/);
    expect(await page.locator('.bubble[data-role="user"]').allTextContents()).toEqual(["Youhello world"]);
    await screenshot(page, "dashboard-chat", { readme: true });
  }, 60_000);

  it("Stop ends a long generation on the node", async () => {
    await page.getByRole("button", { name: "New chat" }).click();
    await page.getByLabel("Max tokens").fill("");
    await page.getByLabel("Message").fill("Tell me a long story, number 1");
    await page.getByRole("button", { name: "Send" }).click();
    // The log scrolls with every delta, so the button is clicked as an event, not by pointer position.
    const stop = page.getByRole("button", { name: "Stop" });
    await stop.waitFor();
    await stop.dispatchEvent("click");
    await expect.poll(() => page.locator("#chat-stats").textContent()).toBe("Stopped.");
    await expect.poll(async () => (await loadedIds()).find((m) => m.id === TINY_CHAT_ID)?.active_requests).toBe(0);
    expect(await page.getByRole("button", { name: "Send" }).isEnabled()).toBe(true);
  }, 60_000);

  it("keeps an answer with no text in the conversation and says so; a failed one marks its question unsent", async () => {
    await page.goto(`${node.httpUrl}/#chat`);
    await expect.poll(() => page.getByLabel("Model", { exact: true }).locator("option").count()).toBe(1);
    // The page keeps its conversation across a reload: this test starts a new one.
    await page.getByRole("button", { name: "New chat" }).click();
    // The answer the tiny model gives greedily is never empty: this one comes from the network edge,
    // the page's own request answered as the node answers a model that ends at once.
    const chunk = (delta: object, finish: string | null, usage?: object) =>
      `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: TINY_CHAT_ID, choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) })}\n\n`;
    const empty = chunk({ role: "assistant", content: "" }, null) + chunk({}, "stop") + chunk({}, null, { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 }) + "data: [DONE]\n\n";
    await page.route("**/v1/chat/completions", (route) => route.fulfill({ status: 200, headers: { "content-type": "text/event-stream" }, body: empty }));
    await page.getByLabel("Message").fill("first question");
    await page.getByRole("button", { name: "Send" }).click();
    const answer = page.locator('.bubble[data-role="assistant"]').last();
    await expect.poll(() => answer.getAttribute("class")).toContain("empty-answer");
    expect(await answer.locator(".bubble-text").textContent()).toBe("(no text: the model ended its answer at once)");
    expect(await page.locator("#chat-stats").textContent()).toBe("1 token");
    expect(await page.locator("#chat-empty").isHidden()).toBe(true);

    // The next question is sent with the first one and its (empty) answer, as the page shows them.
    const sent: unknown[] = [];
    await page.route("**/v1/chat/completions", (route) => {
      sent.push(JSON.parse(route.request().postData() ?? "{}"));
      return route.fulfill({ status: 503, headers: { "content-type": "application/json" }, body: JSON.stringify({ error: { message: "model not ready", type: "server_error", code: "model_not_ready" } }) });
    });
    await page.getByLabel("Message").fill("second question");
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => page.locator('.bubble[data-role="user"]').last().getAttribute("class")).toContain("unsent");
    expect(sent).toHaveLength(1);
    const turns = (sent[0] as { messages: Array<{ role: string; content: string }> }).messages.filter((m) => m.role !== "system");
    expect(turns).toEqual([{ role: "user", content: "first question" }, { role: "assistant", content: "" }, { role: "user", content: "second question" }]);
    // The failed question is back in the box, ready to send again.
    expect(await page.getByLabel("Message").inputValue()).toBe("second question");
    await page.unroute("**/v1/chat/completions");
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("shows the loaded model with memory, context, slots and expiry; Unload empties the view", async () => {
    await page.getByRole("tab", { name: /Local/ }).click();
    expect(await page.locator(`.local-row[data-model-id="${TINY_CHAT_ID}"] .facts`).innerText()).toMatch(/Context\s+node default/i);
    await page.getByRole("tab", { name: /Loaded/ }).click();
    const row = page.locator(`#loaded-rows tr[data-model-id="${TINY_CHAT_ID}"]`);
    await row.waitFor();
    // The row may still be the one rendered while the stopped chat was winding down; showing the
    // tab refreshes it at once.
    await expect
      .poll(async () => (await row.locator("th, td").allInnerTexts()).slice(0, 6))
      .toEqual([TINY_CHAT_ID, expect.stringMatching(/MiB$/), "1,024 tokens", "0 / 2", "0", expect.stringMatching(/^[45] min \d+ s$/)]);
    expect(await page.locator("#loaded-budget-text").textContent()).toMatch(/MiB of .+ budget \(\d+%\)$/);
    expect(await page.locator("#loaded-count").textContent()).toBe("1");
    await screenshot(page, "dashboard-loaded", { readme: true });

    await row.getByRole("button", { name: `Unload ${TINY_CHAT_ID}` }).click();
    await page.locator("#loaded-empty").waitFor();
    expect(await page.locator("#loaded-table").isHidden()).toBe(true);
    expect(await loadedIds()).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("shows a model used in place from an extra directory on the Local tab with its path, and no Delete button", async () => {
    await page.getByRole("tab", { name: /Local/ }).click();
    const row = page.locator(`.local-row[data-model-id="${IN_PLACE_ID}"]`);
    await row.waitFor();
    const facts = await row.locator(".facts").innerText();
    expect(facts).toMatch(/Source\s+extra model directory/i);
    expect(facts).toMatch(/Verified\s+hashed; the catalog has no sha256 to compare/i);
    expect(await row.locator(".path-value").textContent()).toBe(path.join(extraDir.dir, IN_PLACE_FILE));
    expect(await row.getByRole("button", { name: /Delete/ }).count()).toBe(0);
    expect(await row.locator(".in-place").textContent()).toContain("never deletes files in an extra model directory");
    // A model the node downloaded keeps its Delete button.
    expect(await page.locator(`.local-row[data-model-id="${TINY_CHAT_ID}"]`).getByRole("button", { name: /Delete/ }).count()).toBe(1);
    expect(pageErrors).toEqual([]);
  }, 30_000);
});
