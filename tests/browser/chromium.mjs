// What docchat's browser checks share: the system's headless Chromium, driven by
// playwright-core (installed by scripts/setup.sh outside the repository, found at
// $DOCCHAT_BROWSER_DIR), with a fresh profile directory for each run.
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const require = createRequire(path.join(process.env.DOCCHAT_BROWSER_DIR, "index.js"));
const { chromium } = require("playwright-core");

// Throws with `what` unless `ok`.
export const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
};

// Runs `body(context)` in a headless Chromium speaking `locale` (extra command-line
// `args` besides), then closes it and removes its profile.
export async function withChromium(locale, args, body) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "docchat-chromium-"));
  // playwright passes the profile directory as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    locale,
    viewport: { width: 1400, height: 900 },
    args: [
      "--no-sandbox", "--disable-gpu", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ...args,
    ],
  });
  try {
    return await body(context);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
