// The web UI of a reader of a shared store (`--role reader`), in the system's
// headless Chromium (playwright-core): it says which shared index it answers from,
// offers no way to add or remove documents, and still lists what the writer indexed.
// Usage: node reader.mjs BASE_URL STORE_URI DOCUMENT_NAME
import { check, withChromium } from "./chromium.mjs";

const [base, store, document] = process.argv.slice(2);

await withChromium("en-US", [], async (context) => {
  const page = context.pages()[0] || (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base);
  const place = page.locator("#index-place");
  await place.waitFor({ state: "visible", timeout: 30000 });
  const said = await place.textContent();
  check(said.includes(store) && /Answers from the shared index/.test(said), `where the index lives: ${said}`);
  check(await page.locator("#add-folder").isHidden(), "no folder to add on a reader");
  check(await page.locator("#add-files").isHidden(), "no files to add on a reader");
  check((await page.locator("#collections button").count()) === 0, "no folder to stop watching on a reader");
  await page.getByText("1 indexed").first().waitFor({ timeout: 30000 });
  // The writer's document is there to ask about (the @ picker lists it).
  await page.locator("#question").pressSequentially("@");
  await page.locator("#mention li", { hasText: document }).first().waitFor({ timeout: 10000 });
  check(errors.length === 0, `no script errors: ${errors.join("; ")}`);
  console.log(JSON.stringify({ place: said }));
});
