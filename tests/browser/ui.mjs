// Drives docchat's web UI in the system's headless Chromium (playwright-core).
// Usage: node ui.mjs BASE_URL SCREENSHOT_DIR UPLOAD_FILE
// Every check throws on failure; the figures seen are printed as one JSON line.
import fs from "node:fs";
import path from "node:path";
import { check, withChromium } from "./chromium.mjs";

const [base, shots, uploadFile, scanFile] = process.argv.slice(2);
fs.mkdirSync(shots, { recursive: true });
const seen = {};

await withChromium("en-US", [], async (context) => {
  const page = context.pages()[0] || (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // The server's Content-Security-Policy must let the UI do all it does.
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) errors.push(m.text());
  });
  // Nothing but the docchat server is ever asked for anything.
  const hosts = new Set();
  page.on("request", (r) => hosts.add(new URL(r.url()).host));

  await page.goto(base);
  await page.getByText("1 indexed").first().waitFor({ timeout: 60000 });

  // Ask; the answer streams in (its length grows over several observations).
  await page.fill("#question", "How does TraceMonkey call C builtins through the FFI?");
  await page.keyboard.press("Enter");
  await page.locator("#stop").waitFor({ state: "visible" });
  const answer = page.locator(".msg.assistant .answer").last();
  const lengths = new Set();
  const start = Date.now();
  while (Date.now() - start < 120000) {
    const text = await answer.textContent();
    if (text) lengths.add(text.length);
    if (await page.locator(".msg.assistant .meta").last().textContent()) break;
    await page.waitForTimeout(50);
  }
  const meta = await page.locator(".msg.assistant .meta").last().textContent();
  check(/tok\/s/.test(meta) && /first token [\d,]+ ms/.test(meta), `figures after the answer: ${meta}`);
  check(lengths.size >= 3, `the answer arrived in pieces (${lengths.size} lengths seen)`);
  seen.stream_steps = lengths.size;
  seen.meta = meta;
  await page.screenshot({ path: `${shots}/1-answer.png` });

  // Copy puts the answer's text on the clipboard; Regenerate writes a new answer
  // to the same question in the same chat.
  // (The headless browser has no system clipboard: record what the page writes.)
  await page.evaluate(() => {
    navigator.clipboard.writeText = async (t) => {
      window.copiedText = t;
    };
  });
  const answerText = await answer.textContent();
  await page.locator(".msg.assistant button", { hasText: "Copy" }).last().click();
  await page.locator(".msg.assistant button", { hasText: "Copied" }).waitFor();
  const copied = await page.evaluate(() => window.copiedText);
  const squash = (t) => String(t).replace(/\s+/g, "");
  check(squash(copied) === squash(answerText) && squash(copied).length > 10, `the clipboard holds the answer: ${JSON.stringify({ copied, answerText })}`);
  await page.locator(".msg.assistant button", { hasText: "Regenerate" }).last().click();
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant").length === 2);
  await page.locator(".msg.assistant .meta").nth(1).filter({ hasText: /tok\/s|tokens/ }).waitFor({ timeout: 120000 });
  check((await page.locator(".msg.user").count()) === 1, "regenerating asks no new question");

  // Each [n] shows what the check against source n found: the markers drawn as
  // unsupported are exactly the cites the server found unsupported, and say why.
  // (The server keeps an answer once its stream has ended: wait for the second.)
  const chats = await (await page.request.get(`${base}/api/chats`)).json();
  let answers = [];
  for (let i = 0; i < 100 && answers.length < 2; i++) {
    const stored = await (await page.request.get(`${base}/api/chats/${chats.chats[0].id}`)).json();
    answers = stored.messages.filter((m) => m.role === "assistant");
    if (answers.length < 2) await page.waitForTimeout(100);
  }
  check(answers.length === 2, `both answers are kept: ${answers.length}`);
  const last = answers[1];
  const claims = last.sources.claims;
  check(Array.isArray(claims), `the answer's claims are kept with it: ${JSON.stringify(last.sources)}`);
  const ns = new Set(last.sources.citations.map((c) => c.n));
  const cites = claims.flatMap((c) => c.cites).filter((c) => ns.has(c.n));
  const drawn = page.locator(".msg.assistant").nth(1).locator("button.cite.unsupported");
  const wanted = cites.filter((c) => !c.supported).length;
  check((await drawn.count()) === wanted, `unsupported markers drawn: ${await drawn.count()}, found by the server: ${wanted}`);
  for (const title of await drawn.evaluateAll((bs) => bs.map((b) => b.title))) {
    check(/^Not found in source \d+/.test(title), `an unsupported marker says why: ${title}`);
  }
  // A sentence no source the model cited holds gets docchat's own marker for the
  // source that does hold it, drawn apart and titled as docchat's.
  const found = page.locator(".msg.assistant").nth(1).locator("button.cite.found");
  const foundWanted = claims.filter((c) => c.found_in).length;
  check((await found.count()) === foundWanted, `docchat's markers drawn: ${await found.count()}, claims placed by the server: ${foundWanted}`);
  for (const title of await found.evaluateAll((bs) => bs.map((b) => b.title))) {
    check(/^Cited by docchat: source \d+ holds this sentence$/.test(title), `docchat's marker says so: ${title}`);
  }
  seen.found = foundWanted;
  seen.claims = claims.length;
  seen.unsupported = wanted;
  seen.cites = cites.length;

  // "Explain the search" shows both rankings, what fusion kept, and the gate.
  await page.locator("#explain").check();
  await page.locator("#explain-out table.explain tr.kept").first().waitFor();
  const gate = await page.locator("#explain-out .gate").textContent();
  check(/^Nearest passage similarity 0\.\d{3} ≥ /.test(gate), `the gate is explained: ${gate}`);
  const rows = await page.locator("#explain-out table.explain tr").count();
  check(rows >= 4, `the fused ranking is listed: ${rows} rows`);
  seen.explain_rows = rows;
  await page.locator("#explain").uncheck();

  // The sources panel lists the passages; a click opens the PDF at the cited page.
  const sources = page.locator("#source-list .source");
  check((await sources.count()) >= 1, "sources are listed");
  const first = sources.first();
  const where = await first.locator(".where").textContent();
  const pageNo = Number(/page (\d+)/.exec(where)[1]);
  const [popup] = await Promise.all([page.waitForEvent("popup"), first.locator("a.open").click()]);
  const opened = popup.url();
  check(opened.includes("/api/documents/") && opened.endsWith(`#page=${pageNo}`), `opened ${opened} for page ${pageNo}`);
  seen.opened = opened;
  await popup.close();

  // A reload finds the chat in the history; opening it restores both turns.
  await page.reload();
  const chat = page.locator("#chats .chat-open").first();
  await chat.waitFor();
  check((await chat.textContent()).includes("TraceMonkey"), "the chat is listed by its question");
  await chat.click();
  await page.locator(".msg.user").first().waitFor();
  // The question and both answers are back (the regenerated one included).
  await page.locator(".msg.assistant").nth(1).waitFor();
  check((await page.locator(".msg").count()) === 4, `the turns are back: ${await page.locator(".msg").count()}`);
  check((await page.locator("#source-list .source").count()) >= 1, "with their sources");

  // A dropped file lands in the collection's folder and becomes indexed.
  const bytes = fs.readFileSync(uploadFile);
  const transfer = await page.evaluateHandle(({ data, name }) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(data)], name, { type: "text/markdown" }));
    return dt;
  }, { data: [...bytes], name: path.basename(uploadFile) });
  await page.dispatchEvent("body", "dragenter", { dataTransfer: transfer });
  check(await page.locator("#drop").isVisible(), "the drop zone shows");
  await page.screenshot({ path: `${shots}/2-drop.png` });
  await page.dispatchEvent("body", "drop", { dataTransfer: transfer });
  await page.locator("#upload-message", { hasText: "indexing" }).waitFor();
  await page.getByText("2 indexed").first().waitFor({ timeout: 120000 });

  // A document that is not a PDF opens as its text, scrolled to the passage.
  const status = await (await page.request.get(`${base}/api/status`)).json();
  const note = status.documents.find((d) => d.path.endsWith(".md"));
  const viewer = await context.newPage();
  await viewer.goto(`${base}/view.html?doc=${note.id}&page=1&start=2&end=14`);
  const marked = await viewer.locator("mark#passage").textContent();
  check(marked === "Dropped note", `the viewer marks the passage: ${marked}`);
  await viewer.close();

  // A scanned page dropped as an image is read by OCR, and a source from it says so.
  const scanBytes = fs.readFileSync(scanFile);
  const scanTransfer = await page.evaluateHandle(({ data, name }) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(data)], name, { type: "image/png" }));
    return dt;
  }, { data: [...scanBytes], name: path.basename(scanFile) });
  await page.dispatchEvent("body", "dragenter", { dataTransfer: scanTransfer });
  await page.dispatchEvent("body", "drop", { dataTransfer: scanTransfer });
  await page.getByText("3 indexed").first().waitFor({ timeout: 180000 });
  await page.click("#new-chat");
  await page.fill("#question", "Which DESCRIPTION field declares the packages whose C/C++ header files a package compiles against?");
  await page.keyboard.press("Enter");
  const ocrBadge = page.locator("#source-list .badge.ocr").first();
  await ocrBadge.waitFor({ timeout: 120000 });
  const ocrTitle = await ocrBadge.getAttribute("title");
  check(/^Read by OCR/.test(ocrTitle), `an OCR'd source says so: ${ocrTitle}`);
  const ocrSource = await page.locator("#source-list .source", { has: page.locator(".badge.ocr") }).first().textContent();
  check(ocrSource.includes(path.basename(scanFile)), `the OCR badge is on the scan: ${ocrSource}`);
  await page.locator("#send").waitFor({ state: "visible", timeout: 120000 });

  // A question about one document as a whole. A source offers it ("Ask about this
  // document"); @ in the question box picks a document by name. It is read to its
  // last page and the answer says what was read.
  await page.locator("#source-list .source button.about").first().click();
  check((await page.locator("#scope .chip").count()) === 1, "a source's document goes into the scope");
  await page.locator("#scope .chip button").click();
  check(await page.locator("#scope").isHidden(), "the scope is removed");
  await page.click("#new-chat");
  await page.locator("#question").pressSequentially("@dropped");
  await page.locator("#mention li", { hasText: "dropped-note.md" }).waitFor();
  await page.keyboard.press("Enter");
  await page.locator("#scope .chip", { hasText: "dropped-note.md" }).waitFor();
  check((await page.locator("#question").inputValue()) === "", "the @ word leaves the question box");
  await page.fill("#question", "List every room this note mentions");
  const [chatRequest] = await Promise.all([
    page.waitForRequest((r) => r.url().endsWith("/api/chat") && r.method() === "POST"),
    page.keyboard.press("Enter"),
  ]);
  const sent = JSON.parse(chatRequest.postData());
  check(JSON.stringify(sent.documents) === JSON.stringify([note.id]), `the question is about the note: ${JSON.stringify(sent)}`);
  await page.locator(".msg.assistant .meta").last().filter({ hasText: /tokens/ }).waitFor({ timeout: 120000 });
  const readText = await page.locator(".msg.assistant .answer").last().textContent();
  check(/Read 1 of 1 page \(1 passage\)/.test(readText), `the answer says what was read: ${readText}`);
  seen.reading = readText;
  const readSupport = await page.locator(".msg.assistant .support").last().textContent();
  check(readSupport === "", `every item cites the window it was found in: ${readSupport}`);
  check((await page.locator(".msg.assistant .reading-notes li").count()) >= 1 || /None found/.test(readText), "the notes are shown as they come");
  await page.screenshot({ path: `${shots}/6-reading.png` });
  await page.locator("#scope .chip button").click();

  // A folder that does not exist is refused with the reason, in the panel.
  await page.fill("#folder-path", "/no/such/folder");
  await page.click("#add-folder button[type=submit]");
  await page.locator("#folder-message.error", { hasText: "does not exist" }).waitFor();

  // With no collection ticked there is nothing to search: the question waits.
  await page.uncheck("#col-papers");
  const before = await page.locator(".msg").count();
  await page.fill("#question", "Who keeps the archive room key?");
  await page.keyboard.press("Enter");
  await page.locator("#state", { hasText: "Tick at least one collection" }).waitFor();
  check((await page.locator(".msg").count()) === before, "no question was sent");
  await page.check("#col-papers");

  // A generation stopped mid-way really stops.
  await page.click("#new-chat");
  await page.click("#open-settings");
  await page.fill("#set-tokens", "1500");
  await page.screenshot({ path: `${shots}/3-settings.png` });
  check((await page.locator("#model-table tbody tr").count()) >= 10, "the model picker lists models");
  check((await page.locator("#model-table td.fit").first().textContent()).length > 0, "with their fit");
  check((await page.locator("#resources dd").first().textContent()).includes("MiB"), "resources show memory");
  await page.click("#settings button[value=close]");
  // The model may end early on its own; for this check it writes until stopped
  // (the request the UI sends gets llama-server's ignore_eos added).
  await page.route("**/api/chat", (route) => {
    const body = JSON.parse(route.request().postData());
    check(body.max_tokens === 1500, `the settings apply to the request: ${body.max_tokens}`);
    route.continue({ postData: JSON.stringify({ ...body, ignore_eos: true }) });
  });
  await page.fill("#question", "Write a very long essay about everything in these documents.");
  await page.keyboard.press("Enter");
  await page
    .waitForFunction(() => {
      const a = [...document.querySelectorAll(".msg.assistant .answer")].pop();
      return a && a.textContent.length > 20;
    }, null, { timeout: 120000 })
    .catch(async (e) => {
      await page.screenshot({ path: `${shots}/failed-stop.png` });
      const shown = await page.evaluate(() => ({
        messages: document.getElementById("messages").innerText.slice(0, 300),
        state: document.getElementById("state").innerText,
        active: document.activeElement && document.activeElement.id,
        dialog: document.getElementById("settings").open,
        question: document.getElementById("question").value,
      }));
      throw new Error(`no answer to stop: ${e.message}; the page shows: ${JSON.stringify(shown)}`);
    });
  await page.click("#stop");
  await page.locator(".msg.assistant .meta", { hasText: "stopped" }).waitFor();
  check(await page.locator("#send").isVisible(), "ready for the next question");
  // The server frees the model at once.
  let running = 1;
  for (let i = 0; i < 40 && running; i++) {
    running = (await (await page.request.get(`${base}/api/resources`)).json()).requests.chat_in_flight;
    if (running) await page.waitForTimeout(100);
  }
  check(running === 0, "no generation runs after Stop");

  // Narrow window (side panel open), dark theme.
  await page.emulateMedia({ reducedMotion: "reduce" });
  await page.setViewportSize({ width: 420, height: 860 });
  check(await page.locator("#open-sidebar").isVisible(), "a narrow window has a menu button");
  await page.click("#open-sidebar");
  await page.screenshot({ path: `${shots}/4-narrow.png` });
  await page.click("#close-sidebar");
  await page.emulateMedia({ colorScheme: "dark" });
  await page.setViewportSize({ width: 1400, height: 900 });
  await page.screenshot({ path: `${shots}/5-dark.png` });

  check(errors.length === 0, `no script errors: ${errors.join("; ")}`);
  const baseHost = new URL(base).host;
  check([...hosts].every((h) => h === baseHost || h === ""), `only docchat was asked: ${[...hosts]}`);
  seen.hosts = [...hosts];
  console.log(JSON.stringify(seen));
});
