// docchat web UI: streamed answers with citations, and the document list.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function refreshStatus() {
  try {
    const res = await fetch("/api/status");
    const s = await res.json();
    const c = s.counts;
    $("summary").textContent =
      `${c.indexed} indexed · ${c.failed} failed · ${s.queue} in queue · ${s.models.chat}`;
    const list = $("documents");
    list.replaceChildren();
    for (const d of s.documents) {
      const li = el("li");
      li.dataset.state = d.state;
      li.append(el("span", `state ${d.state}`, d.state));
      if (d.state === "indexed") {
        const a = el("a", null, `${d.collection}/${d.path}`);
        a.href = `/api/documents/${encodeURIComponent(d.id)}/file`;
        a.target = "_blank";
        li.append(a);
      } else {
        li.append(document.createTextNode(`${d.collection}/${d.path}`));
      }
      if (d.error) li.append(el("span", "reason", d.error));
      list.append(li);
    }
  } catch (e) {
    $("summary").textContent = "server unreachable";
  }
}

function pages(c) {
  return c.page_start === c.page_end ? `p. ${c.page_start}` : `pp. ${c.page_start}–${c.page_end}`;
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

function renderCitations(box, sources) {
  const ul = el("ul", "citations");
  for (const c of sources.citations) {
    const li = el("li", c.cited ? "cited" : "uncited");
    const a = el("a", "citation", `[${c.n}] ${c.collection}/${c.path}, ${pages(c)}`);
    a.href = c.url;
    a.target = "_blank";
    li.append(a, snippetWithMatch(c));
    ul.append(li);
  }
  box.append(ul);
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

// The chat the next question continues (the server keeps its history).
let chatId = null;

async function ask(question) {
  const messages = $("messages");
  messages.append(el("div", "msg user", question));
  const box = el("div", "msg assistant");
  const answer = el("div", "answer", "");
  box.append(answer);
  messages.append(box);
  box.scrollIntoView({ block: "end" });
  try {
    const res = await fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question, chat_id: chatId }),
    });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new Error(body.error ? body.error.message : `HTTP ${res.status}`);
    }
    await readEvents(res, (name, data) => {
      if (name === "chat") chatId = data.id;
      else if (name === "token") answer.textContent += data.text;
      else if (name === "citations") renderCitations(box, data);
      else if (name === "done")
        box.append(el("div", "meta", `${data.tokens} tokens · first token ${data.ttft_ms} ms · ${data.tokens_per_s.toFixed(1)} tok/s`));
      else if (name === "error") box.append(el("div", "error", data.message));
      box.scrollIntoView({ block: "end" });
    });
  } catch (e) {
    box.append(el("div", "error", String(e.message || e)));
  }
}

$("ask").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("question").value.trim();
  if (!q) return;
  $("question").value = "";
  $("send").disabled = true;
  try {
    await ask(q);
  } finally {
    $("send").disabled = false;
    $("question").focus();
  }
});
$("question").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) {
    ev.preventDefault();
    $("ask").requestSubmit();
  }
});

refreshStatus();
setInterval(refreshStatus, 2000);
