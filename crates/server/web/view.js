// Shows one page of a document's extracted text with the cited passage marked and
// scrolled into view (for documents the browser cannot show at a page, like DOCX).
// Its words come from i18n.js (t).
"use strict";

const q = new URLSearchParams(location.search);
const doc = q.get("doc");
const page = Number(q.get("page") || 1);
const start = Number(q.get("start"));
const end = Number(q.get("end"));

function link(id, p) {
  const a = document.getElementById(id);
  const next = new URLSearchParams({ doc, page: p });
  a.href = `/view.html?${next}`;
}

async function show() {
  const box = document.getElementById("page-text");
  const res = await fetch(`/api/documents/${encodeURIComponent(doc)}/text?page=${page}`);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    box.textContent = body.error ? body.error.message : `HTTP ${res.status}`;
    return;
  }
  // A slide of a presentation, a chapter of a book, a page of anything else.
  const word = /\.pptx$/i.test(body.path) ? "slide" : /\.epub$/i.test(body.path) ? "chapter" : /\.(xlsx|xlsm|xlsb|xls|ods)$/i.test(body.path) ? "sheet" : "page";
  document.title = `${body.path}, ${t(word)} ${page} · docchat`;
  document.getElementById("view-title").textContent = `${body.collection} / ${body.path}`;
  document.getElementById("where").textContent = t("where_of", { word: t(word), page, pages: body.pages });
  document.getElementById("original").href = `/api/documents/${encodeURIComponent(doc)}/file`;
  link("prev", Math.max(1, page - 1));
  link("next", Math.min(body.pages, page + 1));
  const bytes = new TextEncoder().encode(body.text);
  const decode = (a, b) => new TextDecoder().decode(bytes.slice(a, b));
  if (Number.isFinite(start) && Number.isFinite(end) && start < end && end <= bytes.length) {
    const mark = document.createElement("mark");
    mark.id = "passage";
    mark.textContent = decode(start, end);
    box.replaceChildren(decode(0, start), mark, decode(end, bytes.length));
    mark.scrollIntoView({ block: "center" });
  } else {
    box.textContent = body.text;
  }
  box.focus();
}

show();
