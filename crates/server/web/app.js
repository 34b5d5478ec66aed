// docchat web UI: chats kept by the server, streamed Markdown answers with cited
// sources, collections with live indexing progress, file drops, settings. Every
// string shown comes from i18n.js (t) in the page's language.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const state = {
  chatId: null,
  lastQuestion: null,
  controller: null,
  collections: [], // from /api/collections
  documents: [], // the indexed documents, from /api/status
  scope: [], // documents the next questions are about: {id, path}
  searched: null, // Set of collection names ticked; null = all
  settings: { top_k: 6, temperature: 0.3, max_tokens: 256 },
  maxUpload: 100 * 1024 * 1024,
};

// ---------------------------------------------------------------- Markdown

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Inline Markdown on escaped text: code, bold, italic, and [n] citation markers.
function inline(s) {
  const codes = [];
  s = s.replace(/`([^`]+)`/g, (_, c) => `\u0000${codes.push(c) - 1}\u0000`);
  s = s
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>")
    .replace(/\[(\d{1,2})\]/g, (_, n) => `<button type="button" class="cite" data-n="${n}" aria-label="${escapeHtml(t("source_n", { n }))}">[${n}]</button>`)
    .replace(/\uE000(\d{1,2})\uE001/g, (_, n) => `<button type="button" class="cite found" data-n="${n}" aria-label="${escapeHtml(t("source_n_found", { n }))}">[${n}]</button>`);
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => `<code>${codes[Number(i)]}</code>`);
}

// A small, safe Markdown renderer: the text is escaped first, so a document or a
// model can never inject markup.
function markdown(src) {
  const lines = escapeHtml(src).split("\n");
  const out = [];
  let i = 0;
  const isTableRow = (l) => /^\s*\|.*\|\s*$/.test(l);
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*```/.test(line)) {
      const body = [];
      i++;
      while (i < lines.length && !/^\s*```/.test(lines[i])) body.push(lines[i++]);
      i++;
      out.push(`<pre><code>${body.join("\n")}</code></pre>`);
      continue;
    }
    const h = line.match(/^(#{1,4})\s+(.*)$/);
    if (h) {
      const level = Math.min(h[1].length + 2, 6);
      out.push(`<h${level}>${inline(h[2])}</h${level}>`);
      i++;
      continue;
    }
    if (isTableRow(line) && i + 1 < lines.length && /^\s*\|[\s:|-]+\|\s*$/.test(lines[i + 1])) {
      const cells = (l) => l.trim().slice(1, -1).split("|").map((c) => inline(c.trim()));
      const head = cells(line).map((c) => `<th scope="col">${c}</th>`).join("");
      i += 2;
      const rows = [];
      while (i < lines.length && isTableRow(lines[i])) {
        rows.push(`<tr>${cells(lines[i]).map((c) => `<td>${c}</td>`).join("")}</tr>`);
        i++;
      }
      out.push(`<table><thead><tr>${head}</tr></thead><tbody>${rows.join("")}</tbody></table>`);
      continue;
    }
    const list = line.match(/^\s*([-*]|\d+[.)])\s+/);
    if (list) {
      const ordered = /\d/.test(list[1]);
      const items = [];
      while (i < lines.length && /^\s*([-*]|\d+[.)])\s+/.test(lines[i])) {
        items.push(`<li>${inline(lines[i].replace(/^\s*([-*]|\d+[.)])\s+/, ""))}</li>`);
        i++;
      }
      const tag = ordered ? "ol" : "ul";
      out.push(`<${tag}>${items.join("")}</${tag}>`);
      continue;
    }
    if (!line.trim()) {
      i++;
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && !/^\s*(```|#{1,4}\s|[-*]\s|\d+[.)]\s|\|)/.test(lines[i])) {
      para.push(lines[i++]);
    }
    if (!para.length) para.push(lines[i++]);
    out.push(`<p>${inline(para.join("\n")).replace(/\n/g, "<br>")}</p>`);
  }
  return out.join("");
}

// ---------------------------------------------------------------- sources

// A slide of a presentation, a chapter of a book, a page of anything else.
function pages(c) {
  const word = /\.pptx$/i.test(c.path) ? "slide" : /\.epub$/i.test(c.path) ? "chapter" : /\.(xlsx|xlsm|xlsb|xls|ods)$/i.test(c.path) ? "sheet" : "page";
  return c.page_start === c.page_end ? `${t(word)} ${c.page_start}` : `${t(word + "s")} ${c.page_start}–${c.page_end}`;
}

// The snippet with its matched part (a byte range of the page text) in <mark>.
function snippetWithMatch(c) {
  const span = el("span", "snippet");
  const bytes = new TextEncoder().encode(c.snippet);
  const from = Math.max(0, c.match_start - c.byte_start);
  const to = Math.min(bytes.length, c.match_end - c.byte_start);
  const decode = (a, b) => new TextDecoder().decode(bytes.slice(a, b));
  if (!(from < to) || (from === 0 && to === bytes.length)) {
    span.textContent = c.snippet;
    return span;
  }
  span.append(decode(0, from), el("mark", null, decode(from, to)), decode(to, bytes.length));
  return span;
}

// Where a source opens: a PDF at its page in the browser's viewer, other documents
// as their extracted text scrolled to the passage.
function sourceUrl(c) {
  if (/\.pdf$/i.test(c.path)) return c.url;
  const q = new URLSearchParams({ doc: c.document_id, page: c.page_start, start: c.match_start, end: c.match_end });
  return `/view.html?${q}`;
}

// The answer with docchat's own citations: after each sentence that no source the
// model cited holds, the source docchat found holding it (drawn apart from the
// model's markers by inline()).
function withFound(text, sources) {
  if (!sources || !sources.claims) return text;
  let out = "";
  let rest = text;
  for (const claim of sources.claims) {
    // A marker that opened the next line was moved to the end of the claim.
    const sentence = rest.includes(claim.text) ? claim.text : claim.text.replace(/(\s*\[\d{1,2}\])+$/, "");
    const at = rest.indexOf(sentence);
    if (at < 0 || !sentence) continue;
    const end = at + sentence.length;
    out += rest.slice(0, end);
    rest = rest.slice(end);
    if (claim.found_in) out += ` \uE000${claim.found_in}\uE001`;
  }
  return out + rest;
}

// Marks each [n] of a rendered answer by what the check found: a claim its
// source does not hold is "unsupported" (the hover says which words are missing),
// a number naming no source is "unknown". Returns what to say under the answer.
function markSupport(body, sources) {
  if (!sources || !sources.citations) return "";
  const byN = new Map(sources.citations.map((c) => [c.n, c]));
  // The checked cites of each source, in the order the answer makes them.
  const queue = new Map();
  for (const claim of sources.claims || []) {
    for (const c of claim.cites) {
      if (!queue.has(c.n)) queue.set(c.n, []);
      queue.get(c.n).push(c);
    }
  }
  for (const b of body.querySelectorAll("button.cite.found")) {
    b.title = t("cited_by_docchat", { n: b.dataset.n });
  }
  for (const b of body.querySelectorAll("button.cite:not(.found)")) {
    const n = Number(b.dataset.n);
    if (!byN.has(n)) {
      b.classList.add("unknown");
      b.title = t("no_source", { n });
      continue;
    }
    const cite = (queue.get(n) || []).shift();
    const supported = cite ? cite.supported : byN.get(n).supported;
    if (supported === false) {
      b.classList.add("unsupported");
      const words = cite && cite.missing.length ? `: ${cite.missing.join(", ")}` : "";
      b.title = t("not_found_in", { n, words });
    } else if (supported === true) {
      b.title = t("holds", { n });
    }
  }
  const claims = sources.claims || [];
  const unsupported = claims.filter((c) => c.cites.some((x) => !x.supported)).length;
  const uncited = claims.filter((c) => c.uncited).length;
  const notes = [];
  if (sources.unfounded) notes.push(t("unfounded"));
  if (unsupported) notes.push(t("n_unsupported", { n: unsupported }));
  if (uncited) notes.push(t("n_uncited", { n: uncited }));
  return notes.join(" · ");
}

function showSources(sources, focusN) {
  const list = $("source-list");
  list.replaceChildren();
  $("sources-hint").hidden = sources && sources.citations.length > 0;
  if (!sources) return;
  for (const c of sources.citations) {
    const li = el("li", c.cited ? "source cited" : "source");
    li.id = `source-${c.n}`;
    li.value = c.n;
    const name = c.path.split("/").pop();
    const head = el("div", "source-head");
    head.append(el("strong", null, name), el("span", "where", ` ${c.collection} · ${pages(c)}`));
    if (c.cited) head.append(el("span", "badge", t("badge_cited")));
    if (c.found) head.append(el("span", "badge found", t("badge_found")));
    if (c.supported === false) head.append(el("span", "badge unsupported", t("badge_unsupported")));
    if (c.ocr) {
      const badge = el("span", "badge ocr", "OCR");
      badge.title = t("ocr_title");
      head.append(badge);
    }
    const open = el("a", "open", t("open_at", { where: pages(c) }));
    open.href = sourceUrl(c);
    open.target = "_blank";
    open.rel = "noopener";
    const about = el("button", "small about", t("ask_about_doc"));
    about.type = "button";
    about.addEventListener("click", () => {
      addScope([{ id: c.document_id, path: c.path }]);
      $("question").focus();
    });
    li.append(head, snippetWithMatch(c), open, about);
    list.append(li);
  }
  if (focusN) {
    const target = $(`source-${focusN}`);
    if (target) {
      target.classList.add("flash");
      target.scrollIntoView({ block: "nearest" });
      target.querySelector("a.open").focus();
      setTimeout(() => target.classList.remove("flash"), 1200);
    }
  }
}

// "Why wasn't my document found?": the last question's search, step by step —
// where each passage ranked by meaning (vector) and by words (keyword), what fusion
// kept, what the model is given, and whether anything was close enough to ask it.
async function explainSearch() {
  const out = $("explain-out");
  out.hidden = !$("explain").checked;
  if (out.hidden) return;
  if (!state.lastQuestion) {
    out.replaceChildren(el("p", "hint", t("ask_first")));
    return;
  }
  const body = { query: state.lastQuestion, top_k: state.settings.top_k, explain: true };
  if (state.searched) body.collections = [...state.searched];
  let r;
  try {
    r = await api("/api/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    out.replaceChildren(el("p", "error", String(e.message || e)));
    return;
  }
  const x = r.explain;
  const parts = [];
  if (x.nearest_similarity === null || x.nearest_similarity === undefined) {
    parts.push(el("p", "gate", t("keyword_alone")));
  } else {
    const close = x.nearest_similarity >= x.min_similarity;
    const asked = close || x.about_the_documents;
    parts.push(el("p", asked ? "gate" : "gate far",
      t("nearest", { s: num(x.nearest_similarity, 3), op: close ? "≥" : "<", min: num(x.min_similarity, 2) }) +
      t(close ? "model_asked" : x.about_the_documents ? "about_whole" : "nothing_close")));
  }
  if (x.keywords) {
    const names = new Intl.DisplayNames([LANG], { type: "language" });
    const langs = x.keywords.langs.map((c) => names.of(c)).join(", ");
    const p = el("p", "hint", t(x.keywords.told ? "keywords_as" : "keywords_guess", { langs, words: "" }));
    p.append(el("code", null, x.keywords.words.join(" ") || t("keywords_none")));
    parts.push(p);
  }
  const rank = (list) => new Map(list.map((h) => [h.chunk_id, h.rank]));
  const v = rank(x.vector);
  const k = rank(x.keyword);
  const kept = new Set(r.hits.map((h) => `${h.path}#${h.page_start}`));
  const table = el("table", "explain");
  const head = el("tr");
  for (const h of ["#", t("col_fused"), t("col_vector"), t("col_keyword"), t("col_passage")]) head.append(el("th", null, h));
  table.append(head);
  for (const h of x.fused.slice(0, 10)) {
    const tr = el("tr", kept.has(`${h.path}#${h.page_start}`) ? "kept" : "cut");
    const name = h.path.split("/").pop();
    for (const cell of [String(h.rank), num(h.score, 4), v.has(h.chunk_id) ? `#${v.get(h.chunk_id)}` : "–",
      k.has(h.chunk_id) ? `#${k.get(h.chunk_id)}` : "–", `${name} · ${pages(h)}`]) {
      tr.append(el("td", null, cell));
    }
    table.append(tr);
  }
  parts.push(table);
  parts.push(el("p", "hint", t("kept_hint", { n: r.hits.length, k: x.chat_passages })));
  out.replaceChildren(...parts);
}

// ---------------------------------------------------------------- messages

function addUser(text) {
  const m = el("div", "msg user");
  m.append(el("div", "who", t("you")), el("div", "body", text));
  $("messages").append(m);
}

// An answer bubble; returns handles to fill it.
function addAnswer() {
  const m = el("div", "msg assistant");
  const body = el("div", "body answer");
  const meta = el("div", "meta");
  const support = el("div", "support");
  const actions = el("div", "actions");
  m.append(el("div", "who", "docchat"), body, support, meta, actions);
  $("messages").append(m);
  let text = "";
  let sources = null;
  let notesBox = null;
  const notes = [];
  body.addEventListener("click", (ev) => {
    const b = ev.target.closest("button.cite");
    if (b) showSources(sources, Number(b.dataset.n));
  });
  const copy = el("button", "small", t("copy"));
  copy.type = "button";
  copy.addEventListener("click", async () => {
    try {
      // What the reader sees: docchat's citations as plain [n] markers too.
      await navigator.clipboard.writeText(withFound(text, sources).replace(/\uE000(\d+)\uE001/g, "[$1]"));
      copy.textContent = t("copied");
    } catch {
      copy.textContent = t("copy_failed");
    }
    setTimeout(() => (copy.textContent = t("copy")), 1500);
  });
  const regen = el("button", "small regenerate", t("regenerate"));
  regen.type = "button";
  regen.addEventListener("click", () => {
    if (state.lastQuestion && !state.controller) ask(state.lastQuestion, true);
  });
  const showSrc = el("button", "small", t("sources"));
  showSrc.type = "button";
  showSrc.addEventListener("click", () => showSources(sources));
  actions.append(copy, regen, showSrc);
  const render = () => {
    body.innerHTML = markdown(withFound(text, sources));
    support.textContent = markSupport(body, sources);
  };
  return {
    element: m,
    append(t) {
      text += t;
      render();
    },
    set(t) {
      text = t;
      render();
    },
    setSources(s) {
      sources = s;
      render();
      if (s) showSources(s);
    },
    meta(t) {
      meta.textContent = t;
    },
    // The notes of a whole-document reading, as they come.
    addNotes(list) {
      if (!list.length) return;
      if (!notesBox) {
        notesBox = el("details", "reading-notes");
        notesBox.open = true;
        notesBox.append(el("summary", null, t("notes_reading")), el("ul"));
        m.insertBefore(notesBox, body);
      }
      for (const n of list) {
        notes.push(n);
        notesBox.querySelector("ul").append(el("li", null, `${n.text} (p. ${n.page})`));
      }
      notesBox.querySelector("summary").textContent = t("notes_reading_n", { n: notes.length });
    },
    get notes() {
      return notes;
    },
    error(t) {
      m.append(el("div", "error", t));
    },
    get text() {
      return text;
    },
  };
}

function scrollDown() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
}

function statsLine(s) {
  if (!s) return "";
  const tps = s.tokens_per_s ? `${num(s.tokens_per_s, 1)} tok/s` : "";
  return t("stats", { tokens: num(s.tokens), ms: num(s.ttft_ms) }) + (tps ? " · " + tps : "");
}

// Parses a text/event-stream body, calling onEvent(name, data) per event.
async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

function setBusy(busy, label) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("state").textContent = label || "";
  document.body.classList.toggle("busy", busy);
}

async function ask(question, regenerate) {
  state.lastQuestion = question;
  if (!regenerate) addUser(question);
  const answer = addAnswer();
  scrollDown();
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true, t("searching"));
  const body = {
    question,
    chat_id: state.chatId,
    top_k: state.settings.top_k,
    temperature: state.settings.temperature,
    max_tokens: state.settings.max_tokens,
  };
  if (state.searched) body.collections = [...state.searched];
  if (state.scope.length) body.documents = state.scope.map((d) => d.id);
  let finished = false;
  let reading = null;
  try {
    const res = await fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!res.ok) {
      const b = await res.json().catch(() => ({}));
      const wait = res.headers.get("Retry-After");
      throw new Error((b.error ? b.error.message : `HTTP ${res.status}`) + (wait ? t("try_again", { s: wait }) : ""));
    }
    let first = true;
    await readEvents(res, (name, data) => {
      if (name === "chat") {
        const isNew = state.chatId !== data.id;
        state.chatId = data.id;
        $("chat-title").textContent = data.title;
        if (isNew) loadChats();
      } else if (name === "token") {
        if (first) {
          setBusy(true, t("writing"));
          first = false;
        }
        answer.append(data.text);
        scrollDown();
      } else if (name === "citations") {
        answer.setSources(data);
        if ($("explain").checked) explainSearch();
      } else if (name === "reading") {
        reading = data;
        answer.addNotes(data.notes);
        if (data.skipped) answer.error(data.skipped);
        if (!data.finished) setBusy(true, readingLine(data));
        scrollDown();
      } else if (name === "done") {
        finished = true;
        answer.meta(statsLine(data));
      } else if (name === "error") {
        answer.error(data.message);
      }
    });
  } catch (e) {
    if (e.name === "AbortError") {
      if (reading && !answer.text && answer.notes.length) {
        // Stopped while reading: the notes so far are the answer, marked partial
        // (the chat keeps them so).
        answer.set(t("partial", { done: reading.windows_done, total: reading.windows_total }));
        answer.meta(t("stopped_partial"));
      } else answer.meta(t("stopped"));
    }
    else answer.error(String(e.message || e));
  } finally {
    state.controller = null;
    setBusy(false, finished ? "" : t("not_finished"));
    loadChats();
  }
}

function stop() {
  if (state.controller) state.controller.abort();
}

// "Reading 24 of 81 pages · window 3 of 12 · about 2 min left"
function readingLine(r) {
  let eta = "";
  if (r.eta_ms != null && r.windows_done > 0) {
    const s = Math.round(r.eta_ms / 1000);
    eta = s >= 90 ? t("eta_min", { m: Math.round(s / 60) }) : t("eta_s", { s });
  }
  return t("reading_line", { read: num(r.pages_read), total: num(r.pages_total), done: r.windows_done, windows: r.windows_total }) + eta;
}

// ---------------------------------------------------------------- scope

// The documents the next questions are about: chips above the question box.
function addScope(docs) {
  for (const d of docs) if (!state.scope.some((x) => x.id === d.id)) state.scope.push(d);
  renderScope();
}

function renderScope() {
  const box = $("scope");
  box.replaceChildren();
  box.hidden = state.scope.length === 0;
  if (box.hidden) return;
  box.append(el("span", null, t("scope_about")));
  for (const d of state.scope) {
    const chip = el("span", "chip", d.path.split("/").pop());
    chip.title = d.path;
    const x = el("button", null, "×");
    x.type = "button";
    x.setAttribute("aria-label", t("stop_asking", { path: d.path }));
    x.addEventListener("click", () => {
      state.scope = state.scope.filter((s) => s.id !== d.id);
      renderScope();
    });
    chip.append(x);
    box.append(chip);
  }
}

// `@` in the question box: the documents (and collections) whose name has what
// follows it; Enter or Tab or a click picks one, which goes into the scope.
function mentionWord() {
  const q = $("question");
  const before = q.value.slice(0, q.selectionStart);
  const m = before.match(/(^|\s)@([^\s@]*)$/);
  return m ? { start: before.length - m[2].length - 1, word: m[2].toLowerCase() } : null;
}

function mentionChoices(word) {
  const docs = state.documents
    .filter((d) => d.path.toLowerCase().includes(word))
    .slice(0, 8)
    .map((d) => ({ label: d.path, docs: [{ id: d.id, path: d.path }] }));
  const cols = state.collections
    .filter((c) => c.name.toLowerCase().includes(word))
    .map((c) => {
      const inside = state.documents.filter((d) => d.collection === c.name).slice(0, 100);
      return { label: t("all_docs", { name: c.name, n: inside.length }), docs: inside.map((d) => ({ id: d.id, path: d.path })) };
    })
    .filter((c) => c.docs.length);
  return docs.concat(cols);
}

function showMentions() {
  const list = $("mention");
  const at = mentionWord();
  const choices = at ? mentionChoices(at.word) : [];
  list.replaceChildren();
  list.hidden = choices.length === 0;
  choices.forEach((c, i) => {
    const li = el("li", null, c.label);
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", i === 0 ? "true" : "false");
    li.addEventListener("mousedown", (ev) => {
      ev.preventDefault();
      pickMention(c);
    });
    li.choice = c;
    list.append(li);
  });
}

function pickMention(choice) {
  const q = $("question");
  const at = mentionWord();
  if (at) q.value = q.value.slice(0, at.start) + q.value.slice(q.selectionStart);
  addScope(choice.docs);
  $("mention").hidden = true;
  q.focus();
}

function moveMention(step) {
  const items = [...$("mention").children];
  const i = items.findIndex((li) => li.getAttribute("aria-selected") === "true");
  const next = (i + step + items.length) % items.length;
  items.forEach((li, j) => li.setAttribute("aria-selected", j === next ? "true" : "false"));
}

// ---------------------------------------------------------------- chats

async function api(path, options) {
  const res = await fetch(path, options);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ? body.error.message : `HTTP ${res.status}`);
  return body;
}

async function loadChats() {
  let data;
  try {
    data = await api("/api/chats");
  } catch {
    return;
  }
  const list = $("chats");
  list.replaceChildren();
  for (const c of data.chats) {
    const li = el("li", c.id === state.chatId ? "chat current" : "chat");
    const open = el("button", "chat-open", c.title);
    open.type = "button";
    open.dataset.id = c.id;
    if (c.id === state.chatId) open.setAttribute("aria-current", "true");
    open.addEventListener("click", () => openChat(c.id));
    const rename = el("button", "icon small", "✎");
    rename.type = "button";
    rename.setAttribute("aria-label", t("rename", { title: c.title }));
    rename.addEventListener("click", async () => {
      const title = prompt(t("new_title"), c.title);
      if (title && title.trim()) {
        await api(`/api/chats/${c.id}`, {
          method: "PATCH",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ title }),
        }).catch((e) => alert(e.message));
        if (c.id === state.chatId) $("chat-title").textContent = title.trim();
        loadChats();
      }
    });
    const del = el("button", "icon small", "✕");
    del.type = "button";
    del.setAttribute("aria-label", t("delete", { title: c.title }));
    del.addEventListener("click", async () => {
      if (!confirm(t("confirm_delete", { title: c.title }))) return;
      await api(`/api/chats/${c.id}`, { method: "DELETE" }).catch((e) => alert(e.message));
      if (c.id === state.chatId) newChat();
      loadChats();
    });
    const exp = el("a", "icon small", "⤓");
    exp.href = `/api/chats/${c.id}/export`;
    exp.setAttribute("aria-label", t("export", { title: c.title }));
    li.append(open, rename, del, exp);
    list.append(li);
  }
}

async function openChat(id) {
  if (state.controller) return;
  const data = await api(`/api/chats/${id}`);
  state.chatId = id;
  $("chat-title").textContent = data.chat.title;
  $("messages").replaceChildren();
  showSources(null);
  let lastSources = null;
  for (const m of data.messages) {
    if (m.role === "user") {
      addUser(m.content);
      state.lastQuestion = m.content;
    } else {
      const a = addAnswer();
      a.set(m.content);
      a.setSources(m.sources && m.sources.citations ? m.sources : null);
      if (m.sources) lastSources = m.sources;
      a.meta(m.stopped ? t("stopped") : statsLine(m.stats));
    }
  }
  showSources(lastSources);
  loadChats();
  scrollDown();
  closeSidebar();
}

function newChat() {
  stop();
  state.chatId = null;
  state.lastQuestion = null;
  $("chat-title").textContent = t("new_chat");
  $("messages").replaceChildren();
  showSources(null);
  loadChats();
  $("question").focus();
}

// ---------------------------------------------------------------- collections

async function loadCollections() {
  let data, status;
  try {
    [data, status] = await Promise.all([api("/api/collections"), api("/api/status")]);
  } catch {
    $("progress").textContent = t("unreachable");
    return;
  }
  state.collections = data.collections;
  state.documents = status.documents.filter((d) => d.state === "indexed");
  // A shared index: where it lives; a reader of it adds and removes nothing.
  const place = status.index || { role: "local" };
  const reader = place.role === "reader";
  const where = $("index-place");
  where.hidden = place.role === "local";
  where.textContent = place.role === "local" ? "" : t(reader ? "index_reader" : "index_writer", { store: place.store });
  for (const id of ["add-folder", "add-files"]) $(id).hidden = reader;
  const list = $("collections");
  list.replaceChildren();
  for (const c of data.collections) {
    const li = el("li", c.watched ? "collection" : "collection unwatched");
    const id = `col-${c.name.replace(/[^a-z0-9]/gi, "_")}`;
    const box = el("input");
    box.type = "checkbox";
    box.id = id;
    box.checked = !state.searched || state.searched.has(c.name);
    box.addEventListener("change", () => {
      const all = state.collections.map((x) => x.name);
      const set = state.searched ? new Set(state.searched) : new Set(all);
      if (box.checked) set.add(c.name);
      else set.delete(c.name);
      state.searched = set.size === all.length ? null : set;
    });
    const label = el("label", null, c.name);
    label.htmlFor = id;
    const counts = el("span", "counts", t("n_indexed", { n: num(c.indexed) }) + (c.pending ? t("n_pending", { n: num(c.pending) }) : "") +
      (c.failed ? t("n_failed", { n: num(c.failed) }) : "") + (c.paused ? t("paused") : ""));
    li.append(box, label);
    if (!c.watched || reader) li.append(el("span"));
    if (c.watched && !reader) {
      const rm = el("button", "icon small", "×");
      rm.type = "button";
      rm.setAttribute("aria-label", t("stop_watching", { name: c.name }));
      rm.addEventListener("click", async () => {
        if (!confirm(t("confirm_unwatch", { path: c.path }))) return;
        await api(`/api/collections/${encodeURIComponent(c.name)}`, { method: "DELETE" }).catch((e) => alert(e.message));
        loadCollections();
      });
      li.append(rm);
    }
    li.append(counts);
    const failed = status.documents.filter((d) => d.collection === c.name && d.state === "failed");
    if (failed.length) {
      const det = el("details", "failed");
      det.append(el("summary", null, t("n_unreadable", { n: failed.length })));
      const ul = el("ul");
      for (const d of failed) ul.append(el("li", null, `${d.path}: ${d.error || t("unknown_reason")}`));
      det.append(ul);
      li.append(det);
    }
    list.append(li);
  }
  showProgress(status.progress);
  // A full or read-only data folder: say so until writing works again.
  const alert = $("write-error");
  alert.hidden = !status.write_error;
  alert.textContent = status.write_error
    ? t("write_waiting", { message: status.write_error.message, n: status.write_error.waiting })
    : "";
  // Folders or files that cannot be reached now: their documents are kept.
  const away = status.unavailable || [];
  const note = $("unavailable");
  note.hidden = away.length === 0;
  note.textContent = away.length
    ? t("cannot_reach", { list: away.map((u) => `${u.path} (${u.reason})`).join(", ") })
    : "";
}

function showProgress(p) {
  if (!p) return;
  const parts = [];
  if (p.queued > 0 || p.done < p.total) {
    parts.push(t("indexing", { done: num(p.done), total: num(p.total) }));
    if (p.chunks_per_s) parts.push(t("chunks_s", { r: num(p.chunks_per_s, 1) }));
    if (p.eta_s) parts.push(t("left_s", { s: num(Math.ceil(p.eta_s)) }));
  }
  if (p.ocr) parts.push(t("ocr_progress", { path: p.ocr.path, p: Math.min(p.ocr.done + 1, p.ocr.total), total: p.ocr.total }));
  if (p.paused && p.paused.length) parts.push(t("paused_list", { list: p.paused.join(", ") }));
  $("progress").textContent = parts.join(" · ");
}

let collectionsTimer = null;
function refreshCollectionsSoon() {
  if (collectionsTimer) return;
  collectionsTimer = setTimeout(() => {
    collectionsTimer = null;
    loadCollections();
  }, 400);
}

function listenToIndexing() {
  const events = new EventSource("/api/events");
  events.addEventListener("progress", (e) => showProgress(JSON.parse(e.data)));
  events.addEventListener("document", refreshCollectionsSoon);
}

$("add-folder").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const path = $("folder-path").value.trim();
  const msg = $("folder-message");
  msg.className = "message";
  if (!path) return;
  try {
    const r = await api("/api/collections", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path }),
    });
    msg.textContent = t("watching_as", { path: r.path, name: r.name });
    $("folder-path").value = "";
    loadCollections();
  } catch (e) {
    msg.className = "message error";
    msg.textContent = e.message;
  }
});

// ---------------------------------------------------------------- files

const READABLE = /\.(pdf|docx|odt|pptx|xlsx|xlsm|xlsb|xls|ods|epub|txt|text|md|markdown|html?|png|jpe?g|tiff?)$/i;

function uploadTarget() {
  const watched = state.collections.filter((c) => c.watched && c.folder_exists);
  const ticked = watched.filter((c) => !state.searched || state.searched.has(c.name));
  return (ticked[0] || watched[0] || {}).name;
}

async function uploadFiles(files) {
  const target = uploadTarget();
  const msg = $("upload-message");
  msg.className = "message";
  if (!target) {
    msg.className = "message error";
    msg.textContent = t("watch_first");
    return;
  }
  const lines = [];
  let failed = false;
  for (const f of files) {
    if (!READABLE.test(f.name)) {
      lines.push(t("unreadable_kind", { name: f.name }));
      failed = true;
      continue;
    }
    if (f.size > state.maxUpload) {
      lines.push(t("too_large", { name: f.name, mb: num(Math.round(state.maxUpload / 1048576)) }));
      failed = true;
      continue;
    }
    try {
      const r = await api(`/api/collections/${encodeURIComponent(target)}/files?name=${encodeURIComponent(f.name)}`, {
        method: "POST",
        headers: { "Content-Type": "application/octet-stream" },
        body: f,
      });
      lines.push(t("added_to", { path: r.path, target }));
    } catch (e) {
      lines.push(`${f.name}: ${e.message}`);
      failed = true;
    }
  }
  msg.textContent = lines.join("\n");
  if (failed) msg.className = "message error";
  loadCollections();
}

let dragDepth = 0;
window.addEventListener("dragenter", (e) => {
  if (!e.dataTransfer || ![...e.dataTransfer.types].includes("Files")) return;
  dragDepth++;
  $("drop-target").textContent = uploadTarget() || t("no_watched");
  $("drop").hidden = false;
});
window.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) $("drop").hidden = true;
});
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  $("drop").hidden = true;
  if (e.dataTransfer && e.dataTransfer.files.length) uploadFiles([...e.dataTransfer.files]);
});
$("add-files").addEventListener("click", () => $("file-input").click());
$("file-input").addEventListener("change", () => {
  uploadFiles([...$("file-input").files]);
  $("file-input").value = "";
});

// ---------------------------------------------------------------- settings

function mib(bytes) {
  return bytes >= 10 * 2 ** 30 ? `${num(bytes / 2 ** 30, 1)} GiB` : `${num(Math.ceil(bytes / 2 ** 20))} MiB`;
}

// The server's answer settings are the starting values, taken once: a later refresh of
// the model table (each time the settings open) must not undo what the user set.
let serverSettingsTaken = false;

async function loadModels() {
  const m = await api("/api/models");
  if (!serverSettingsTaken) {
    serverSettingsTaken = true;
    state.settings.top_k = m.settings.top_k;
    state.settings.temperature = Math.round(m.settings.temperature * 100) / 100;
    state.settings.max_tokens = m.settings.max_tokens;
  }
  if (m.settings.max_upload_bytes) state.maxUpload = m.settings.max_upload_bytes;
  $("in-use").textContent = t("in_use", { chat: m.in_use.chat, ctx: num(m.in_use.context_size), emb: m.in_use.embedding });
  const body = $("model-table").querySelector("tbody");
  body.replaceChildren();
  const row = (name, kind, size, need, fit, inUse, use) => {
    const tr = el("tr", inUse ? "in-use" : "");
    const nameCell = el("td", null, name + (inUse ? t("in_use_mark") : ""));
    if (use) {
      const b = el("button", "small use", t("use"));
      b.type = "button";
      b.setAttribute("aria-label", t("answer_with", { name }));
      b.addEventListener("click", async () => {
        b.disabled = true;
        $("model-message").className = "message";
        $("model-message").textContent = t("loading", { name });
        try {
          const r = await api("/api/models/use", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ model: use }),
          });
          $("model-message").textContent = t("now_from", { chat: r.chat, use });
          loadModels();
        } catch (e) {
          $("model-message").className = "message error";
          $("model-message").textContent = e.message;
          b.disabled = false;
        }
      });
      nameCell.append(" ", b);
    }
    tr.append(nameCell, el("td", null, kind), el("td", null, size), el("td", null, need), el("td", `fit ${(fit || "").replace(/ /g, "-")}`, fit ? t(`fit_${fit.replace(/ /g, "_")}`) : "?"));
    body.append(tr);
  };
  for (const r of m.models) {
    if (!r.info) continue;
    const chat = !r.info.embedding;
    const stem = r.name.replace(/\.gguf$/i, "");
    const inUse = stem === (chat ? m.in_use.chat : m.in_use.embedding);
    const usable = chat && !inUse && r.fit !== "will not fit";
    row(r.name, t(chat ? "kind_chat" : "kind_embedding"), mib(r.info.file_size), r.memory ? mib(r.memory.weights + r.memory.kv_cache + r.memory.compute) : "?", r.fit, inUse, usable ? r.name : null);
  }
  const here = new Set(m.models.map((r) => r.name));
  for (const r of m.catalog) {
    const c = r.catalog;
    const where = t(!c.repo ? "with_docchat" : here.has(c.file) ? "downloaded" : "to_download");
    row(`${c.name} (${c.params} ${c.quant}, ${where})`, t(`kind_${c.kind}`), mib(r.info.file_size), mib(r.memory.weights + r.memory.kv_cache + r.memory.compute), r.fit, false, null);
  }
}

async function loadResources() {
  const r = await api("/api/resources").catch(() => null);
  if (!r) return;
  const dl = $("resources");
  dl.replaceChildren();
  const add = (k, v) => dl.append(el("dt", null, k), el("dd", null, v));
  add(t("memory"), mib(r.process.rss_bytes));
  add(t("cpu"), r.process.cpu_percent == null ? t("measuring") : t("cpu_of", { p: num(r.process.cpu_percent), cores: r.process.cores }));
  add(t("free_memory"), t("a_of_b", { a: mib(r.system.available), b: mib(r.system.total) }));
  add(t("chat_model"), t("chat_loaded", { id: r.models.chat.id, ctx: num(r.models.chat.context_size) }));
  add(t("embedding_model"), t("embedding_loaded", { id: r.models.embedding.id, dims: r.models.embedding.dimensions }));
  add(t("running"), t("running_of", { n: r.requests.chat_in_flight, limit: r.requests.chat_limit }));
}

let resourcesTimer = null;
$("open-settings").addEventListener("click", async () => {
  $("set-topk").value = state.settings.top_k;
  $("set-temp").value = Math.round(state.settings.temperature * 100) / 100;
  $("set-tokens").value = state.settings.max_tokens;
  $("settings").showModal();
  loadModels().catch(() => {});
  loadResources();
  resourcesTimer = setInterval(loadResources, 2000);
});
$("settings").addEventListener("close", () => {
  clearInterval(resourcesTimer);
  const num = (id, lo, hi, fallback) => {
    const v = Number($(id).value);
    return Number.isFinite(v) && v >= lo && v <= hi ? v : fallback;
  };
  state.settings.top_k = Math.round(num("set-topk", 1, 50, state.settings.top_k));
  state.settings.temperature = num("set-temp", 0, 2, state.settings.temperature);
  state.settings.max_tokens = Math.round(num("set-tokens", 16, 4096, state.settings.max_tokens));
});

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme || "";
}
$("theme").addEventListener("click", () => {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === "dark"
    : matchMedia("(prefers-color-scheme: dark)").matches;
  const next = dark ? "light" : "dark";
  localStorage.setItem("docchat-theme", next);
  applyTheme(next);
});
applyTheme(localStorage.getItem("docchat-theme"));

// The language: as the browser's, or one chosen here (kept in this browser). The
// page reloads in it, on the chat that was open.
(function languageChoice() {
  const select = $("set-lang");
  const chosen = localStorage.getItem(LANG_KEY) || "";
  const option = (value, label) => {
    const o = el("option", null, label);
    o.value = value;
    o.selected = value === chosen;
    select.append(o);
  };
  option("", t("language_auto"));
  for (const [code, name] of Object.entries(LANGUAGES)) option(code, name);
  select.addEventListener("change", () => {
    if (select.value) localStorage.setItem(LANG_KEY, select.value);
    else localStorage.removeItem(LANG_KEY);
    if (state.chatId) sessionStorage.setItem("docchat-open-chat", state.chatId);
    location.reload();
  });
})();

// ---------------------------------------------------------------- layout, keys

function closeSidebar() {
  document.body.classList.remove("sidebar-open");
}
$("open-sidebar").addEventListener("click", () => document.body.classList.add("sidebar-open"));
$("close-sidebar").addEventListener("click", closeSidebar);
$("new-chat").addEventListener("click", newChat);
$("stop").addEventListener("click", stop);
$("explain").addEventListener("change", explainSearch);

$("ask").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("question").value.trim();
  if (!q || state.controller) return;
  if (state.searched && state.searched.size === 0) {
    $("state").textContent = t("tick_one");
    return;
  }
  $("question").value = "";
  await ask(q, false);
  $("question").focus();
});
$("question").addEventListener("input", showMentions);
$("question").addEventListener("keydown", (ev) => {
  if (!$("mention").hidden) {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      moveMention(ev.key === "ArrowDown" ? 1 : -1);
      return;
    }
    if (ev.key === "Enter" || ev.key === "Tab") {
      ev.preventDefault();
      const li = $("mention").querySelector('[aria-selected="true"]');
      if (li) pickMention(li.choice);
      return;
    }
    if (ev.key === "Escape") {
      $("mention").hidden = true;
      return;
    }
  }
  if (ev.key === "Enter" && !ev.shiftKey) {
    ev.preventDefault();
    $("ask").requestSubmit();
  }
});
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && state.controller) stop();
});

loadChats();
loadCollections();
loadModels().catch(() => {});
listenToIndexing();
const reopen = sessionStorage.getItem("docchat-open-chat");
if (reopen) {
  sessionStorage.removeItem("docchat-open-chat");
  openChat(reopen).catch(() => {});
}
