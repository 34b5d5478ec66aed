// docchat's web UI in Italian, in the system's headless Chromium (playwright-core):
// a browser whose language is Italian gets every string in Italian — the main
// screen, an answer with its sources, the explanation of the search, a document in
// the scope, the settings, the viewer and the sign-in page — with numbers written
// the Italian way; the choice in Settings switches to English and back. Any string
// of the English table seen on a page fails the run, as does any English word in the
// interface (the documents' own text, names and the answers aside).
// Usage: node italian.mjs BASE_URL SCREENSHOT_DIR
import fs from "node:fs";
import { check, withChromium } from "./chromium.mjs";

const [base, shots] = process.argv.slice(2);
fs.mkdirSync(shots, { recursive: true });
const seen = { screens: [] };

// What the interface itself says on the page: text outside the documents' and the
// user's words, and the placeholders, labels and hover texts. Runs in the page.
function interfaceText() {
  const skip = [
    ".answer", ".msg.user .body", ".snippet", ".chip", ".chat-open", "#chat-title",
    ".source-head strong", ".collection label", "#mention", ".reading-notes li",
    "#page-text", "#view-title", "#folder-message", "#upload-message", ".failed li",
    "#progress", ".where", "#resources dd", "#in-use", "#model-message", "#explain-out td",
  ].join(",");
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest(skip) || p.closest("[hidden]") || p.closest("script,style,code")) continue;
    // A model's name in the table is a name, not a word of the interface.
    if (p.closest("#model-table td:first-child") && p.tagName === "TD") continue;
    if (n.textContent.trim()) out.push(n.textContent.trim());
  }
  for (const e of document.querySelectorAll("[placeholder],[aria-label],[title]")) {
    if (e.closest(".chip,.chat-open,#mention")) continue;
    for (const a of ["placeholder", "aria-label", "title"]) {
      const v = e.getAttribute(a);
      if (v && !(a === "aria-label" && e.closest("#chats"))) out.push(v);
    }
  }
  return out.join("\n");
}

// The English table's fixed words (each message cut at its {fields}), for those
// whose Italian differs; and the keys missing from either table. Runs in the page.
function englishTable() {
  const pieces = new Set();
  const words = (m) => (typeof m === "function" ? [m({ n: 1 }), m({ n: 2 })] : [m]);
  for (const [key, en] of Object.entries(MESSAGES.en)) {
    const it = MESSAGES.it[key];
    if (typeof en !== "function" && en === it) continue;
    for (const w of words(en)) {
      for (const piece of w.replace(/<[^>]+>/g, "{}").split(/\{\w*\}/)) {
        const p = piece.trim().replace(/^[·:,.()\s]+|[·:,.()\s]+$/g, "");
        if (p.length >= 5 && !/^[\d\s.%/]+$/.test(p)) pieces.add(p);
      }
    }
  }
  const missing = Object.keys(MESSAGES.en).filter((k) => !(k in MESSAGES.it))
    .concat(Object.keys(MESSAGES.it).filter((k) => !(k in MESSAGES.en)));
  return { pieces: [...pieces], missing, lang: LANG };
}

// English words that no Italian interface string holds.
const ENGLISH = /\b(the|and|of|your|with|from|ask|asked|sources?|settings|copy|page|pages|indexed|answers?|documents?|question|search|folder|files|stop|close|model|memory|loaded|read|reading|window|left|about|found|cited|open|language)\b/i;

async function untranslated(page, where) {
  const text = await page.evaluate(interfaceText);
  const table = await page.evaluate(englishTable);
  // Whole words only: "Modello" holds "Model".
  const escape = (p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const found = table.pieces.filter((p) => new RegExp(`(^|[^\\p{L}])${escape(p)}($|[^\\p{L}])`, "u").test(text));
  const word = text.split("\n").filter((l) => ENGLISH.test(l));
  check(found.length === 0 && word.length === 0,
    `${where}: untranslated strings ${JSON.stringify(found)}, English words in ${JSON.stringify(word)}`);
  seen.screens.push(where);
  return text;
}

await withChromium("it-IT", ["--lang=it-IT"], async (context) => {
  const page = context.pages()[0] || (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  // Both tables have the same messages.
  await page.goto(base);
  const table = await page.evaluate(englishTable);
  check(table.missing.length === 0, `messages missing from a table: ${table.missing}`);
  check(table.lang === "it", `the browser's language is taken: ${table.lang}`);
  check((await page.getAttribute("html", "lang")) === "it", "the page says it is Italian");
  await page.getByText("3 indicizzati").first().waitFor({ timeout: 60000 });
  check(await page.locator("#send", { hasText: "Chiedi" }).isVisible(), "the button asks in Italian");
  await untranslated(page, "main screen");

  // An answer with its sources and the explanation of the search.
  await page.fill("#question", "Come chiama TraceMonkey le funzioni C attraverso la FFI?");
  await page.keyboard.press("Enter");
  await page.locator("#stop", { hasText: "Ferma" }).waitFor({ state: "visible" });
  const meta = page.locator(".msg.assistant .meta").last();
  await meta.filter({ hasText: /primo token in [\d.]+ ms/ }).waitFor({ timeout: 120000 });
  seen.meta = await meta.textContent();
  check(/\d,\d tok\/s/.test(seen.meta), `figures after the answer, with a decimal comma: ${seen.meta}`);
  const where = await page.locator("#source-list .source .where").first().textContent();
  check(/(pagina|pagine) \d+/.test(where), `a source's page in Italian: ${where}`);
  check((await page.locator("#source-list a.open").first().textContent()).startsWith("Apri a pagina"), "open at the page");
  await page.locator("#explain").check();
  await page.locator("#explain-out table.explain tr.kept").first().waitFor();
  const gate = await page.locator("#explain-out .gate").textContent();
  check(/^Similarità del passo più vicino 0,\d{3} [≥<] 0,\d{2}: /.test(gate), `the gate in Italian, with a decimal comma: ${gate}`);
  await untranslated(page, "answer, sources and explanation");
  await page.screenshot({ path: `${shots}/7-italian.png` });
  await page.locator("#explain").uncheck();

  // A document in the scope.
  await page.locator("#source-list .source button.about", { hasText: "Chiedi su questo documento" }).first().click();
  await page.locator("#scope", { hasText: "Su:" }).waitFor();
  await untranslated(page, "scope");
  await page.locator("#scope .chip button").click();

  // Settings: every label, the models and the resources, numbers the Italian way.
  await page.click("#open-settings");
  await page.locator("#model-table tbody tr").first().waitFor();
  await page.locator("#resources dd").first().waitFor();
  const inUse = await page.locator("#in-use").textContent();
  check(/^In uso: .*\(contesto di [\d.]+ token\) e .* per la ricerca\.$/.test(inUse), `the models in use: ${inUse}`);
  seen.in_use = inUse;
  await untranslated(page, "settings");
  await page.screenshot({ path: `${shots}/8-italian-settings.png` });

  // The choice in Settings: English, on the chat that was open; then as the browser.
  await Promise.all([page.waitForEvent("load"), page.selectOption("#set-lang", "en")]);
  await page.locator("#send", { hasText: "Ask" }).waitFor();
  check((await page.getAttribute("html", "lang")) === "en", "English when chosen");
  await page.locator(".msg.assistant").first().waitFor();
  check((await page.locator("#chat-title").textContent()).includes("TraceMonkey"), "the open chat comes back");
  await page.click("#open-settings");
  check((await page.locator("#set-lang").inputValue()) === "en", "the choice is kept");
  await Promise.all([page.waitForEvent("load"), page.selectOption("#set-lang", "")]);
  await page.locator("#send", { hasText: "Chiedi" }).waitFor();
  check((await page.getAttribute("html", "lang")) === "it", "back to the browser's language");

  // The viewer of a document's text, and the sign-in page.
  const status = await (await page.request.get(`${base}/api/status`)).json();
  const note = status.documents.find((d) => d.path.endsWith(".md"));
  const viewer = await context.newPage();
  await viewer.goto(`${base}/view.html?doc=${note.id}&page=1&start=2&end=14`);
  await viewer.locator("mark#passage").waitFor();
  check((await viewer.locator("#where").textContent()) === "pagina 1 di 1", "the viewer says where, in Italian");
  await untranslated(viewer, "viewer");
  await viewer.goto(`${base}/login?wrong=1`);
  await viewer.locator("label[for=key]", { hasText: "Chiave API" }).waitFor();
  check(await viewer.locator("p.error", { hasText: "Questa chiave non è giusta." }).isVisible(), "a wrong key said in Italian");
  await untranslated(viewer, "sign-in page");
  await viewer.close();

  check(errors.length === 0, `no script errors: ${errors.join("; ")}`);
  console.log(JSON.stringify(seen));
});
