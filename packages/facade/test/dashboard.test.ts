/**
 * The dashboard in a real browser (Debian's Chromium, headless, driven by playwright-core) against a
 * real node whose Hugging Face is the loopback stand-in. The tests run in order on one page, like
 * an operator would: unlock, search, pull, look at Local, delete, register.
 */
import fs from "node:fs";
import Fastify from "fastify";
import type { Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerDashboardRoutes } from "../src/http/dashboard-routes.js";
import { tempDir } from "../../../testkit/node/index.js";
import { launchChromium, screenshot, type Browser } from "./helpers/chromium.js";
import { dashboardDistDir, ensureDashboardBuilt } from "./helpers/dashboard-build.js";
import { API_KEY, EXTRA_FILE, EXTRA_REPO, SUPPORTED_MODELS, TINY_ID, TINY_NAME, TINY_REPO, TINY_SIZE_TEXT, UNSUPPORTED_ID, startDashboardWorld, type DashboardWorld } from "./helpers/dashboard-world.js";


const card = (page: Page, id: string): Locator => page.locator(`#hub-grid .card[data-model-id="${id}"]`);
const visibleCards = (page: Page): Locator => page.locator("#hub-grid .card:visible");

describe("dashboard in Chromium against a running node", () => {
  let world: DashboardWorld;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const foreignRequests: string[] = [];

  beforeAll(async () => {
    ensureDashboardBuilt();
    [world, browser] = await Promise.all([startDashboardWorld(), launchChromium()]);
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.setDefaultTimeout(15_000);
    page.on("console", (msg) => {
      // Chromium logs every non-2xx fetch; the 401 before the key is entered and the 4xx of a bad registration are expected.
      if (msg.type() === "error" && !/status of 40[0-9]/.test(msg.text())) consoleErrors.push(msg.text());
    });
    page.on("pageerror", (err) => consoleErrors.push(String(err)));
    page.on("request", (req) => {
      const url = req.url();
      if (!url.startsWith(`${world.node.httpUrl}/`) && !url.startsWith("data:")) foreignRequests.push(url);
    });
  });

  afterAll(async () => {
    await browser?.close();
    await world?.close();
  });

  it("asks for the API key once, keeps it for the tab, and shows every model as a card", async () => {
    await page.goto(`${world.node.httpUrl}/`);
    const keyDialog = page.getByRole("dialog", { name: "API key required" });
    await keyDialog.waitFor();
    // A close event queued by an earlier prompt, arriving while this one is open, does not cancel it.
    await page.evaluate(`document.querySelector("#key-dialog").dispatchEvent(new Event("close"))`);
    await keyDialog.getByLabel("API key").fill("wrong-key");
    await keyDialog.getByLabel("API key").press("Enter");
    // A wrong key is refused at the field and asked for again.
    await expect.poll(() => page.locator("#api-key-error").textContent()).toContain("Invalid API key");
    await keyDialog.getByLabel("API key").fill(API_KEY);
    await keyDialog.getByLabel("API key").press("Enter");
    await keyDialog.waitFor({ state: "hidden" });

    await expect.poll(() => visibleCards(page).count()).toBe(SUPPORTED_MODELS.length);
    await page.locator('#feed-status[data-status="live"]').waitFor();
    const tiny = card(page, TINY_ID);
    expect(await tiny.getByRole("heading").textContent()).toBe(TINY_NAME);
    expect(await tiny.locator(".badge").textContent()).toBe("available");
    expect(await tiny.locator(".facts").innerText()).toMatch(new RegExp(`Size\\s+${TINY_SIZE_TEXT}[\\s\\S]*Memory\\s+64\\.0 MiB`, "i"));
    expect(await tiny.locator(".tags").innerText()).toMatch(/chat\s+tiny\s+test/);
    await tiny.getByRole("button", { name: `Pull ${TINY_NAME}` }).waitFor();
    // Hugging Face downloads and likes: fetched by the node in the background, shown when known.
    const stats = tiny.locator(".hub-stats");
    await expect.poll(async () => ((await stats.isVisible()) ? await stats.innerText() : ""), { timeout: 10_000 }).toMatch(/48k downloads\s+312 likes/);
    expect(await card(page, "qwen2.5-7b-instruct-q4_k_m").locator(".hub-stats").isVisible()).toBe(false); // unknown to the stand-in
    expect(await page.evaluate<string | null>(`sessionStorage.getItem("llmlb.apiKey")`)).toBe(API_KEY);

    // The key is kept for the tab: a reload does not ask again.
    await page.reload();
    await expect.poll(() => visibleCards(page).count()).toBe(SUPPORTED_MODELS.length);
    expect(await keyDialog.isVisible()).toBe(false);
    await screenshot(page, "hub");
  });

  it("shows a model this node cannot run greyed out, with the reason and no Pull button", async () => {
    const unsupported = card(page, UNSUPPORTED_ID);
    expect(await unsupported.getAttribute("data-state")).toBe("unsupported");
    expect(await unsupported.locator(".badge").textContent()).toBe("unsupported");
    expect(await unsupported.locator(".card-meta").innerText()).toContain("20B params");
    expect(await unsupported.getByRole("note").innerText()).toContain('format "safetensors" is not supported by this node');
    expect(await unsupported.getByRole("button").count()).toBe(0);
    // Runs in the page: getComputedStyle is the browser's (this file is typed for Node).
    const opacity = await unsupported.evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { opacity: string } }).getComputedStyle(el).opacity);
    expect(Number(opacity)).toBeLessThan(1);
  });

  it("filters cards by name and by tag as the user types", async () => {
    const search = page.getByRole("searchbox", { name: "Search models by name or tag" });
    await search.pressSequentially("qwen");
    await expect.poll(() => visibleCards(page).count()).toBe(1);
    expect(await card(page, "qwen2.5-7b-instruct-q4_k_m").isVisible()).toBe(true);

    await search.fill("");
    await search.pressSequentially("embedding");
    await expect.poll(() => visibleCards(page).count()).toBe(1);
    expect(await card(page, "nomic-embed-text-v1.5-q8_0").isVisible()).toBe(true);

    await search.fill("chat small");
    await expect.poll(() => visibleCards(page).count()).toBe(1);
    expect(await card(page, "llama-3.2-3b-instruct-q4_k_m").isVisible()).toBe(true);

    await search.fill("no-such-model");
    await expect.poll(() => visibleCards(page).count()).toBe(0);
    expect(await page.locator("#hub-empty").innerText()).toContain("No model matches “no-such-model”");

    await search.fill("");
    await expect.poll(() => visibleCards(page).count()).toBe(SUPPORTED_MODELS.length);
    expect(await page.locator("#hub-summary").innerText()).toBe(`${SUPPORTED_MODELS.length} models`);
  });

  it("Pull shows a live progress bar with percent, speed and time left, then “downloaded”", async () => {
    const tiny = card(page, TINY_ID);
    await tiny.getByRole("button", { name: `Pull ${TINY_NAME}` }).click();

    const bar = tiny.getByRole("progressbar", { name: `Downloading ${TINY_NAME}` });
    await bar.waitFor();
    expect(await tiny.locator(".badge").textContent()).toBe("downloading");
    // A value strictly between 0 and 100 proves a progress event arrived mid-transfer.
    await expect
      .poll(async () => Number((await bar.getAttribute("aria-valuenow", { timeout: 500 }).catch(() => null)) ?? -1), { timeout: 10_000, interval: 20 })
      .toSatisfy((now: number) => now > 0 && now < 100);
    expect(await tiny.locator(".progress-text").innerText()).toMatch(/^\d{1,2}% · [\d.]+ (KiB|MiB)\/s · \d+ s left$/);
    expect(await tiny.locator(".progress-sub").innerText()).toContain(` of ${TINY_SIZE_TEXT}`);
    await screenshot(page, "hub-downloading");

    await expect.poll(() => tiny.locator(".badge").textContent(), { timeout: 20_000 }).toBe("downloaded");
    expect(await tiny.locator(".done").innerText()).toContain("Downloaded");
    expect(await tiny.locator(".done svg.icon-check").count()).toBe(1);
    expect(await tiny.getByRole("button", { name: /Pull/ }).count()).toBe(0);
    expect(await page.locator("#local-count").textContent()).toBe("1");
  });

  it("lists the downloaded model on the Local tab with size, memory and path", async () => {
    // Tabs are keyboard-operable: focus the selected tab, then the arrow key moves to Local.
    await page.getByRole("tab", { name: /Model Hub/ }).focus();
    await page.keyboard.press("ArrowRight");
    expect(await page.getByRole("tab", { name: /Local/ }).getAttribute("aria-selected")).toBe("true");
    expect(await page.locator(":focus").getAttribute("id")).toBe("tab-local");
    expect(await page.locator("#panel-hub").isVisible()).toBe(false);
    expect(page.url()).toMatch(/#local$/);
    const row = page.locator(`#local-list [data-model-id="${TINY_ID}"]`);
    await row.waitFor();
    expect(await page.locator("#local-list .local-row").count()).toBe(1);
    expect(await row.getByRole("heading").textContent()).toBe(TINY_NAME);
    const text = await row.innerText();
    expect(text).toMatch(new RegExp(`Size on disk\\s+${TINY_SIZE_TEXT}`, "i"));
    expect(text).toMatch(/Memory\s+64\.0 MiB/i);
    expect(text).toContain("not loaded");
    const shownPath = (await row.locator(".path-value").textContent()) ?? "";
    expect(shownPath.startsWith(world.node.home)).toBe(true);
    expect(fs.existsSync(shownPath)).toBe(true);
    // Only downloaded models are listed.
    expect(await page.locator('#local-list [data-model-id="qwen2.5-7b-instruct-q4_k_m"]').count()).toBe(0);
    await screenshot(page, "local");
  });

  it("Delete asks for confirmation (Escape keeps the model), removes it, and the Hub card returns to available", async () => {
    const row = page.locator(`#local-list [data-model-id="${TINY_ID}"]`);
    const shownPath = (await row.locator(".path-value").textContent()) ?? "";
    const dialog = page.getByRole("dialog", { name: "Delete model?" });

    await row.getByRole("button", { name: `Delete ${TINY_NAME}` }).click();
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain(TINY_NAME);
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    expect(await row.isVisible()).toBe(true);
    // Focus returns to the button that opened the dialog.
    expect(await page.locator(":focus").getAttribute("aria-label")).toBe(`Delete ${TINY_NAME}`);

    await page.keyboard.press("Enter"); // opens it again from the focused Delete button
    await dialog.waitFor();
    // The close event of the Escape above is queued, and input goes first: on a busy machine it can
    // arrive after the Enter that opened the dialog again. Delete must still work when it does.
    await page.evaluate(`document.querySelector("#delete-dialog").dispatchEvent(new Event("close"))`);
    await page.keyboard.press("Enter"); // the focused confirm button
    await dialog.waitFor({ state: "hidden" });
    await row.waitFor({ state: "detached" });
    expect(await page.locator("#local-empty").isVisible()).toBe(true);
    // The button that opened the dialog is gone with its row: focus goes to what took its place.
    await expect.poll(() => page.locator(":focus").getAttribute("id")).toBe("local-empty");
    expect(fs.existsSync(shownPath)).toBe(false);

    await page.getByRole("tab", { name: /Model Hub/ }).click();
    const tiny = card(page, TINY_ID);
    await tiny.getByRole("button", { name: `Pull ${TINY_NAME}` }).waitFor();
    expect(await tiny.locator(".badge").textContent()).toBe("available");
    expect(await page.locator("#local-count").textContent()).toBe("0");
  });

  it("shows a bad registration's error at the field it is about, and a good one as a new card", async () => {
    const dialog = page.getByRole("dialog", { name: "Register a model" });
    const repo = dialog.getByLabel("Hugging Face repo or URL");
    const filename = dialog.getByLabel(/File name/);

    await page.getByRole("button", { name: "Register model" }).click();
    await dialog.waitFor();
    expect(await page.locator(":focus").getAttribute("id")).toBe("reg-repo");
    await repo.fill("this is not a repo");
    await repo.press("Enter");
    const repoError = page.locator("#reg-repo-error");
    await repoError.waitFor();
    expect((await repoError.textContent())?.length).toBeGreaterThan(5);
    expect(await repo.getAttribute("aria-invalid")).toBe("true");
    await screenshot(page, "register-error");

    // A file the repo does not have: the API names the file, so the error is shown under "File name".
    await repo.fill(TINY_REPO);
    expect(await repoError.isVisible()).toBe(false); // typing clears the old error
    await filename.fill("missing.gguf");
    await filename.press("Enter");
    const fileError = page.locator("#reg-filename-error");
    await fileError.waitFor();
    expect(await fileError.textContent()).toContain("missing.gguf");
    expect(await filename.getAttribute("aria-invalid")).toBe("true");

    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });

    // A good registration appears as a card (and arrives over the live feed as well).
    await page.getByRole("button", { name: "Register model" }).click();
    await repo.fill(`https://huggingface.co/${EXTRA_REPO}`);
    await filename.fill(EXTRA_FILE);
    await dialog.getByLabel(/Display name/).fill("My extra tiny");
    await dialog.getByLabel("What it does").selectOption({ label: "Embeddings" });
    await dialog.getByRole("button", { name: "Register" }).click();
    await dialog.waitFor({ state: "hidden" });
    const extra = page.locator("#hub-grid .card", { hasText: "My extra tiny" });
    await extra.waitFor();
    expect(await extra.locator(".badge").textContent()).toBe("available");
    expect(await visibleCards(page).count()).toBe(SUPPORTED_MODELS.length + 1);
    // Registered as an embedding model, as chosen (the stand-in tags the repo text-generation).
    const listed = (await (await fetch(`${world.node.httpUrl}/v0/models`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as { models: Array<{ display_name: string; capabilities: string[] }> };
    expect(listed.models.find((m) => m.display_name === "My extra tiny")?.capabilities).toEqual(["embeddings"]);
  });

  it("shows a failed pull with its reason and lets the user retry", async () => {
    const qwen = card(page, "qwen2.5-7b-instruct-q4_k_m");
    await qwen.getByRole("button", { name: /^Pull Qwen2\.5 7B/ }).click();
    await expect.poll(() => qwen.locator(".badge").textContent(), { timeout: 10_000 }).toBe("failed");
    expect(await qwen.locator(".failure-text").textContent()).toContain("does not exist"); // the stand-in has no such repo
    const retry = qwen.getByRole("button", { name: /^Pull Qwen2\.5 7B/ });
    expect(await retry.innerText()).toContain("Retry pull");
    expect(await retry.isEnabled()).toBe(true);
  });

  it("is readable at a narrow width: one column, no horizontal scrolling (and in dark mode)", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const boxes = await Promise.all((await visibleCards(page).all()).map((c) => c.boundingBox()));
    const lefts = boxes.map((b) => Math.round(b?.x ?? -1));
    expect(new Set(lefts).size).toBe(1);
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await screenshot(page, "hub-narrow");
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.emulateMedia({ colorScheme: "dark" });
    await screenshot(page, "hub-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  it("loaded only from the node (works offline) and without script errors", () => {
    expect(foreignRequests).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});

describe("dashboard routes", () => {
  it("answer 503 with a page that says how to build the dashboard when it was not built", async () => {
    const { dir, cleanup } = tempDir("llmlb-no-dashboard-");
    const app = Fastify();
    try {
      await registerDashboardRoutes(app, { dir });
      const res = await app.inject({ method: "GET", url: "/" });
      expect(res.statusCode).toBe(503);
      expect(res.headers["content-type"]).toMatch(/^text\/html/);
      expect(res.body).toContain("npm run build");
    } finally {
      await app.close();
      cleanup();
    }
  });

  it("serve index.html uncached with a CSP and hashed assets as immutable", async () => {
    ensureDashboardBuilt();
    const app = Fastify();
    try {
      await registerDashboardRoutes(app, { dir: dashboardDistDir });
      const index = await app.inject({ method: "GET", url: "/" });
      expect(index.statusCode).toBe(200);
      expect(index.headers["cache-control"]).toBe("no-cache");
      expect(index.headers["content-security-policy"]).toContain("connect-src 'self'");
      const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(index.body)?.[1];
      expect(script).toBeDefined();
      const asset = await app.inject({ method: "GET", url: `/${script}` });
      expect(asset.statusCode).toBe(200);
      expect(asset.headers["cache-control"]).toContain("immutable");
      expect((await app.inject({ method: "GET", url: "/assets/nope.js" })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});
