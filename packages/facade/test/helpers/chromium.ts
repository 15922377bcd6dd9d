import fs from "node:fs";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { tempDir } from "../../../../testkit/node/index.js";

export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Keeps Chromium off the network and quiet: no QUIC, first-run UI, component or sync traffic. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Launches Debian's Chromium headless with a fresh profile in a temporary directory. A missing
 * browser fails the test with the command that installs it (CI's .ci/run does), never a silent skip.
 */
export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} not found: the dashboard tests drive Debian's Chromium. Install it with \`apt-get install chromium\` (.ci/run does).`);
  }
  const profile = tempDir("llmlb-chromium-");
  try {
    const context = await chromium.launchPersistentContext(profile.dir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 900 },
      deviceScaleFactor: 1,
      colorScheme: "light",
      reducedMotion: "reduce",
      timeout: 30_000,
    });
    return {
      context,
      async close() {
        await context.close().catch(() => undefined);
        profile.cleanup();
      },
    };
  } catch (err) {
    profile.cleanup();
    throw err;
  }
}

const ARTIFACTS = path.resolve(import.meta.dirname, "../../../../test-artifacts/dashboard");
const README_SCREENSHOTS = path.resolve(import.meta.dirname, "../../../../docs/screenshots");

/**
 * A full-page screenshot into test-artifacts/dashboard/. One the README shows (`readme`) also
 * replaces its copy in docs/screenshots/ when LLMLB_UPDATE_SCREENSHOTS=1, so a plain test run
 * leaves the working tree as it was.
 */
export async function screenshot(page: Page, name: string, options: { readme?: boolean } = {}): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (options.readme && process.env.LLMLB_UPDATE_SCREENSHOTS === "1") fs.copyFileSync(file, path.join(README_SCREENSHOTS, `${name}.png`));
}
