//! Questions about whole documents ("summarize this report", "list every deadline",
//! "how many tables…"): top-k retrieval cannot answer them, so the scoped documents
//! are read to the last page.
//!
//! When the text fits the model's context with the answer, it goes in whole, a page
//! to a passage. Otherwise it is read in windows, in document order: each window
//! yields notes (each with its page, each checked against the window's text), kept
//! in a cache keyed by the window's chunks, the question's kind and the model; the
//! notes are then merged (a list deterministically, anything else by the model,
//! hierarchically when they do not fit at once) into one answer citing the windows
//! it comes from. The answer says how much was read.

use crate::answer::rag::{AnswerEvent, AskOptions, Citation, Rag, Sources};
use crate::answer::{check, lang, part};
use anyhow::{Result, bail};
use docchat_core::{GenerationParams, GenerationStats, Generator, Location};
use docchat_store::{ChunkRecord, DocState, DocumentRecord, chunk_ordinal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How a question scoped to documents is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reading {
    /// A whole-document reading when the question asks for one (summarize, list
    /// every, count, compare, outline, timeline…), retrieval otherwise.
    #[default]
    Auto,
    /// Always retrieval.
    Retrieve,
    /// Always the whole documents.
    Whole,
}

impl Reading {
    /// `auto`, `retrieve` or `whole`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "retrieve" => Some(Self::Retrieve),
            "whole" => Some(Self::Whole),
            _ => None,
        }
    }
}

/// What a whole-document question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A summary or overview.
    Summary,
    /// The structure: parts, chapters, sections.
    Outline,
    /// Events and dates in order.
    Timeline,
    /// Differences between versions or parts.
    Compare,
    /// How many of something.
    Count,
    /// Every item of some sort.
    List,
    /// Any other question, answered from notes of every part.
    Question,
}

impl Kind {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Outline => "outline",
            Self::Timeline => "timeline",
            Self::Compare => "compare",
            Self::Count => "count",
            Self::List => "list",
            Self::Question => "question",
        }
    }

    /// Whether the answer is the merged items themselves (no model at the end).
    fn is_itemized(self) -> bool {
        matches!(self, Self::List | Self::Count)
    }

    /// Whether the notes of a window depend on the question's words, not on its
    /// kind alone (a summary's notes serve every summary of the same text).
    fn notes_depend_on_question(self) -> bool {
        matches!(
            self,
            Self::List | Self::Count | Self::Compare | Self::Question
        )
    }
}

/// The words that make a question about a whole document, English and Italian,
/// the first kind that matches winning.
const KIND_WORDS: &[(Kind, &[&str])] = &[
    (
        Kind::Summary,
        &[
            "summar",
            "overview",
            "gist",
            "main points",
            "key points",
            "riassum",
            "riassun",
            "sintesi",
            "sintetizza",
            "punti principali",
        ],
    ),
    (
        Kind::Outline,
        &[
            "outline",
            "table of contents",
            "structure of",
            "struttura",
            "indice",
            "schema",
        ],
    ),
    (Kind::Timeline, &["timeline", "chronolog", "cronologia"]),
    (
        Kind::Compare,
        &[
            "compare",
            "comparison",
            "what changed",
            "differences between",
            "confronta",
            "differenze",
            "cosa è cambiato",
        ],
    ),
    (
        Kind::Count,
        &[
            "how many",
            "count the",
            "number of",
            "quanti",
            "quante",
            "conta ",
        ],
    ),
    (
        Kind::List,
        &[
            "list ",
            "every ",
            "all the ",
            "each ",
            "enumerate",
            "elenca",
            "ogni ",
            "tutti i",
            "tutte le",
            "tutti gli",
        ],
    ),
];

/// The kind of whole-document question `question` is, if it is one.
pub fn kind_of(question: &str) -> Option<Kind> {
    let q = format!("{} ", question.to_lowercase());
    KIND_WORDS
        .iter()
        .find(|(_, words)| words.iter().any(|w| q.contains(w)))
        .map(|(k, _)| *k)
}

/// How a question is answered: `Some(kind)` for a whole-document reading.
pub fn route(question: &str, reading: Reading, scoped: bool) -> Option<Kind> {
    match reading {
        Reading::Retrieve => None,
        Reading::Whole => Some(kind_of(question).unwrap_or(Kind::Question)),
        Reading::Auto if scoped => kind_of(question),
        Reading::Auto => None,
    }
}

/// Whether other requests wait for the model: a whole-document reading lets them
/// go first, window by window. It counts the requests on the model (readings
/// included) and the readings in progress; the others wait when there are more of
/// the first.
#[derive(Clone, Default)]
pub struct Waiting {
    in_flight: Option<Arc<dyn Fn() -> usize + Send + Sync>>,
    readings: Arc<AtomicUsize>,
}

impl Waiting {
    /// `in_flight` says how many requests are admitted to the model.
    pub fn new(in_flight: impl Fn() -> usize + Send + Sync + 'static) -> Self {
        Self {
            in_flight: Some(Arc::new(in_flight)),
            readings: Arc::default(),
        }
    }

    fn now(&self) -> bool {
        self.in_flight
            .as_ref()
            .is_some_and(|f| f() > self.readings.load(Ordering::SeqCst))
    }

    /// Counts a reading until the guard is dropped.
    fn reading(&self) -> ReadingGuard {
        self.readings.fetch_add(1, Ordering::SeqCst);
        ReadingGuard(Arc::clone(&self.readings))
    }
}

struct ReadingGuard(Arc<AtomicUsize>);

impl Drop for ReadingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Waiting(readings: {})",
            self.readings.load(Ordering::SeqCst)
        )
    }
}

/// The default of [`ReadOptions::max_read_tokens`]: a 300-page document of dense
/// text (about 600 tokens a page) is read to the end.
pub const MAX_READ_TOKENS: usize = 200_000;

/// The default of [`ReadOptions::cache_bytes`]: 64 MiB, the notes of some
/// 100,000 windows.
pub const NOTES_CACHE_BYTES: u64 = 64 << 20;

/// Options of whole-document readings.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Retrieval or a whole reading (for questions scoped to documents).
    pub reading: Reading,
    /// Most tokens of document text one question reads; beyond it the answer says
    /// which pages were left out.
    pub max_read_tokens: usize,
    /// Tokens of document text in one window (0: as many as the model's context
    /// holds beside the instruction and the notes).
    pub window_tokens: usize,
    /// Where the notes of windows are kept (none: not kept).
    pub cache_dir: Option<PathBuf>,
    /// Most bytes of kept notes: past it, the notes used least recently go.
    pub cache_bytes: u64,
    /// Other requests that go first.
    pub waiting: Waiting,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            reading: Reading::Auto,
            max_read_tokens: MAX_READ_TOKENS,
            window_tokens: 0,
            cache_dir: None,
            cache_bytes: NOTES_CACHE_BYTES,
            waiting: Waiting::default(),
        }
    }
}

/// One note taken while reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// The note (for a list, the item as the text writes it).
    pub text: String,
    /// The page it is on.
    pub page: u32,
}

/// Progress of a whole-document reading, sent after each window and at the end.
#[derive(Debug, Clone, Serialize)]
pub struct ReadProgress {
    /// What the question asks for.
    pub kind: Kind,
    /// Windows read (or taken from the cache) so far.
    pub windows_done: usize,
    /// Windows in all.
    pub windows_total: usize,
    /// Of the windows done, those whose notes came from the cache.
    pub from_cache: usize,
    /// Pages read so far, and in the scoped documents.
    pub pages_read: u32,
    /// Pages of the scoped documents.
    pub pages_total: u32,
    /// Passages (chunks) read so far, and in all.
    pub passages_read: usize,
    /// Passages to read.
    pub passages_total: usize,
    /// Since the question came.
    pub elapsed_ms: u64,
    /// Estimated time left for the windows.
    pub eta_ms: Option<u64>,
    /// The window just read: its document and pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Location>,
    /// Its notes.
    pub notes: Vec<Note>,
    /// What the budget leaves out, said before reading starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The reading is over (the last event, with the coverage).
    pub finished: bool,
}

/// A chunk of a scoped document, its overlap with the chunk before cut off.
#[derive(Debug, Clone)]
struct Piece {
    doc: usize,
    page: u32,
    text: String,
    hash: String,
    tokens: usize,
}

/// Tokens of notes the model may write for one window.
const NOTE_TOKENS: u32 = 200;
/// Tokens of items the model may write for one window of a list (an index page
/// names a hundred; BENCHMARKS.md, "Whole documents").
const ITEM_TOKENS: u32 = 400;
/// Tokens of the map instruction, the page labels and the question (an allowance).
const MAP_OVERHEAD: usize = 320;
/// Most levels of merging notes before the final answer.
const MAX_LEVELS: usize = 4;

const MAP_LIST: &str = "You read one part of a document and list what the question asks for. \
Write one item per line as: - ITEM (p. N), copying each item exactly as the text writes it, \
with the page it is on. Write nothing else. If this part has none, write: NONE";

const MAP_SUMMARY: &str = "You read one part of a document and write its main points. Write at \
most 6 short notes, one per line as: - note (p. N), in the text's own words for names, numbers, \
dates and terms, each with the page it comes from. Write nothing else.";

const MAP_NOTES: &str = "You read one part of a document and take notes for the question. Write \
at most 6 short notes, one per line as: - note (p. N), in the text's own words for names, \
numbers, dates and terms, each with the page it comes from. Write nothing else. If this part \
has nothing for the question, write: NONE";

const MERGE: &str = "You merge notes taken from parts of a document into at most 8 notes for \
the question, one per line as: - note (p. N), keeping names, numbers and page numbers. Write \
nothing else.";

const WHOLE: &str = "You answer a question about a whole document, given page by page as \
numbered passages. Answer from the passages only, in the language of the question. End each \
sentence with the number of the passage it comes from, like [2].";

const REDUCE: &str = "You answer a question about a whole document from notes taken while \
reading it, given as numbered passages (each covers some pages, in order). Answer from the \
notes only, in the language of the question; a summary covers every passage in order. End \
each sentence with the number of the passage it comes from, like [2].";

/// A window: a run of pieces of one document.
#[derive(Debug, Clone)]
struct Window {
    pieces: std::ops::Range<usize>,
}

/// Plans the windows of `pieces` within `budget` tokens each. The pages of a
/// document go in aligned blocks of a power-of-two count of pages (sized by the
/// document's dense pages), so that an edit of one page changes one window's text
/// and leaves the other windows, and their cached notes, as they were; a block
/// over the budget is cut at chunk boundaries.
fn plan_windows(pieces: &[Piece], budget: usize) -> Vec<Window> {
    let budget = budget.max(1);
    let mut windows = Vec::new();
    for std::ops::Range { start, end } in doc_runs(pieces) {
        let doc_pieces = &pieces[start..end];
        let mut per_page: BTreeMap<u32, usize> = BTreeMap::new();
        for p in doc_pieces {
            *per_page.entry(p.page).or_default() += p.tokens;
        }
        let mut sizes: Vec<usize> = per_page.values().copied().collect();
        sizes.sort_unstable();
        let dense = sizes[(sizes.len() * 9 / 10).min(sizes.len() - 1)].max(1);
        let mut block_pages: u32 = 1;
        while (block_pages as usize * 2) * dense <= budget && block_pages < 1 << 12 {
            block_pages *= 2;
        }
        let mut i = start;
        while i < end {
            let block = (pieces[i].page.max(1) - 1) / block_pages;
            let mut j = i;
            let mut tokens = 0;
            while j < end && (pieces[j].page.max(1) - 1) / block_pages == block {
                if tokens > 0 && tokens + pieces[j].tokens > budget {
                    windows.push(Window { pieces: i..j });
                    i = j;
                    tokens = 0;
                }
                tokens += pieces[j].tokens;
                j += 1;
            }
            windows.push(Window { pieces: i..j });
            i = j;
        }
    }
    windows
}

/// The runs of `pieces` that belong to one document each, in order.
fn doc_runs(pieces: &[Piece]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for run in pieces.chunk_by(|a, b| a.doc == b.doc) {
        out.push(start..start + run.len());
        start += run.len();
    }
    out
}

/// The text of a window, its pages labelled.
fn window_text(pieces: &[Piece]) -> String {
    let mut out = String::new();
    let mut page = None;
    for p in pieces {
        if page != Some(p.page) {
            out.push_str(&format!("\n[p. {}]\n", p.page));
            page = Some(p.page);
        } else {
            out.push('\n');
        }
        out.push_str(p.text.trim());
    }
    out.trim().to_string()
}

/// The text of each page of a window, as written and ASCII-lower-cased (the same
/// byte offsets).
fn page_texts(pieces: &[Piece]) -> BTreeMap<u32, (String, String)> {
    let mut pages: BTreeMap<u32, (String, String)> = BTreeMap::new();
    for p in pieces {
        let (t, l) = pages.entry(p.page).or_default();
        t.push_str(&p.text);
        t.push('\n');
        l.push_str(&p.text.to_ascii_lowercase());
        l.push('\n');
    }
    pages
}

/// The page a note line names at its end (`(p. 12)`, `(page 12)`, `p. 12`), and the
/// line without it.
fn split_page(line: &str) -> (String, Option<u32>) {
    let lower = line.to_lowercase();
    for marker in [
        "(p. ", "(p.", "(page ", "(pp. ", "p. ", "(pagina ", "(pag. ",
    ] {
        if let Some(at) = lower.rfind(marker) {
            let digits: String = lower[at + marker.len()..]
                .chars()
                .skip_while(|c| c.is_whitespace())
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse::<u32>() {
                let text = line[..at]
                    .trim_end_matches([' ', ',', ';', ':', '-'])
                    .trim();
                return (text.to_string(), Some(n));
            }
        }
    }
    (line.trim().to_string(), None)
}

/// The item of a list line: what comes before its explanation.
fn item_of(text: &str) -> String {
    let cut = [
        ": ", " - ", " – ", " — ", " (", ", which", " is ", " = ", " . .", "  ",
    ]
    .iter()
    .filter_map(|sep| text.find(sep))
    .min()
    .unwrap_or(text.len());
    text[..cut]
        .trim()
        .trim_matches(|c: char| matches!(c, '`' | '"' | '\'' | '*' | '“' | '”' | '.' | ','))
        .trim()
        .to_string()
}

/// The notes of a window from what the model wrote: each line a note, kept only
/// when the window holds it (a list's item as written, anything else by the
/// support check), on the page that holds it.
fn parse_notes(raw: &str, kind: Kind, pieces: &[Piece]) -> Vec<Note> {
    let pages = page_texts(pieces);
    let mut notes: Vec<Note> = Vec::new();
    for line in raw.lines() {
        let line = line
            .trim()
            .trim_start_matches(|c: char| matches!(c, '-' | '*' | '•') || c.is_ascii_digit())
            .trim_start_matches(['.', ')'])
            .trim();
        if line.is_empty() || line.eq_ignore_ascii_case("none") {
            continue;
        }
        let (text, claimed) = split_page(line);
        let order = claimed
            .into_iter()
            .chain(pages.keys().copied().filter(|n| Some(*n) != claimed));
        let mut found = None;
        for n in order {
            let Some((original, lower)) = pages.get(&n) else {
                continue;
            };
            if kind.is_itemized() {
                if let Some(item) = item_in(&item_of(&text), original, lower) {
                    found = Some((item, n));
                    break;
                }
            } else if check::holds(&text, lower) {
                found = Some((text.clone(), n));
                break;
            }
        }
        if let Some((text, page)) = found
            && !notes.iter().any(|n| n.text.eq_ignore_ascii_case(&text))
        {
            notes.push(Note { text, page });
        }
    }
    notes
}

/// `item` as the page writes it: found regardless of case, and widened to the
/// whole word when the model cut a name short (`R_HOME_` for `_R_HOME_`).
fn item_in(item: &str, original: &str, lower: &str) -> Option<String> {
    let len = item.chars().count();
    if !(2..=80).contains(&len) {
        return None;
    }
    let needle = item.to_ascii_lowercase();
    let at = lower.find(&needle)?;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = original.as_bytes();
    let (mut start, mut end) = (at, at + needle.len());
    if needle.as_bytes().first().is_some_and(|&c| word(c)) {
        while start > 0 && word(b[start - 1]) {
            start -= 1;
        }
    }
    if needle.as_bytes().last().is_some_and(|&c| word(c)) {
        while end < b.len() && word(b[end]) {
            end += 1;
        }
    }
    original.get(start..end).map(str::to_string)
}

/// The cache of window notes: one small JSON file per key.
struct NoteCache(Option<PathBuf>);

impl NoteCache {
    fn file(&self, key: &str) -> Option<PathBuf> {
        self.0
            .as_ref()
            .map(|d| d.join(&key[..2]).join(format!("{key}.json")))
    }

    fn get(&self, key: &str) -> Option<Vec<Note>> {
        let file = self.file(key)?;
        let bytes = std::fs::read(&file).ok()?;
        let notes = serde_json::from_slice(&bytes).ok()?;
        // Used now: the last to go when the cache is trimmed.
        if let Ok(f) = std::fs::File::options().write(true).open(&file) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        Some(notes)
    }

    /// Removes the notes used least recently until the cache holds at most
    /// three quarters of `max` bytes, when it holds more than `max`.
    fn trim(&self, max: u64) {
        let Some(dir) = &self.0 else { return };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
        for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(sub.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(m) = f.metadata()
                    && m.is_file()
                {
                    let used = m.modified().unwrap_or(std::time::UNIX_EPOCH);
                    files.push((used, m.len(), f.path()));
                }
            }
        }
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total <= max {
            return;
        }
        files.sort();
        let mut removed = 0;
        for (_, len, path) in files {
            if total <= max / 4 * 3 {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                removed += 1;
            }
        }
        tracing::info!(removed, bytes = total, "notes cache trimmed");
    }

    fn put(&self, key: &str, notes: &[Note]) {
        let Some(file) = self.file(key) else { return };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = file.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(notes)?)?;
            std::fs::rename(&tmp, &file)
        };
        if let Err(e) = write() {
            tracing::warn!(error = %e, "cannot keep the notes of a window");
        }
    }
}

/// The cache key of a window's notes: the model, the kind (and the question, when
/// the notes depend on it), the text of its chunks.
fn cache_key(model: &str, kind: Kind, question: &str, pieces: &[Piece]) -> String {
    let mut h = blake3::Hasher::new();
    // The version of the map prompts and of the notes' checks.
    h.update(b"notes 1\0");
    h.update(model.as_bytes());
    h.update(b"\0");
    h.update(kind.as_str().as_bytes());
    h.update(b"\0");
    if kind.notes_depend_on_question() {
        let q: Vec<String> = question
            .to_lowercase()
            .split_whitespace()
            .map(String::from)
            .collect();
        h.update(q.join(" ").as_bytes());
    }
    for p in pieces {
        h.update(b"\0");
        h.update(p.hash.as_bytes());
        h.update(&p.page.to_le_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// "4 min 10 s", "35 s".
fn duration_words(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// `n` with thousands separated by commas.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a reading covered, for the sentence that closes the answer.
struct Coverage {
    /// The part of the documents asked about: "chapter 3, pages 31-35".
    part: Option<String>,
    pages_read: u32,
    pages_total: u32,
    passages: usize,
    windows: usize,
    from_cache: usize,
}

impl Coverage {
    fn sentence(&self, took: Duration) -> String {
        let cache = if self.from_cache > 0 {
            format!(
                "; {} of {} windows from notes kept from an earlier reading",
                self.from_cache, self.windows
            )
        } else {
            String::new()
        };
        let plural = |n: usize, word: &str| {
            format!("{} {word}{}", thousands(n), if n == 1 { "" } else { "s" })
        };
        let part = self
            .part
            .as_ref()
            .map(|p| format!("{p}: "))
            .unwrap_or_default();
        format!(
            "\n\n(Read {part}{} of {} ({}) in {}{}.)",
            thousands(self.pages_read as usize),
            plural(self.pages_total as usize, "page"),
            plural(self.passages, "passage"),
            duration_words(took),
            cache
        )
    }
}

/// Runs one generation quietly (nothing streamed), stopping when the client goes:
/// the text, or `None` when cancelled.
async fn generate_quiet(
    generator: &Arc<dyn Generator>,
    prompt: String,
    params: GenerationParams,
    tx: &mpsc::Sender<AnswerEvent>,
) -> Result<Option<String>> {
    let g = Arc::clone(generator);
    let watch = tx.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let r = g.generate(&prompt, &params, &mut |piece| {
            text.push_str(piece);
            !watch.is_closed()
        });
        r.map(|s| (s, text))
    })
    .await?;
    match out {
        Ok((stats, text)) if stats.finish_reason != docchat_core::FinishReason::Cancelled => {
            Ok(Some(text))
        }
        Ok(_) | Err(docchat_core::Error::Cancelled) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Waits while other requests wait for the model (they go first) or until the
/// client goes; returns whether the client is still there.
async fn wait_turn(waiting: &Waiting, tx: &mpsc::Sender<AnswerEvent>) -> bool {
    while waiting.now() && !tx.is_closed() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    !tx.is_closed()
}

impl Rag {
    /// Answers `question` by reading the documents of `opts.filter.documents` to
    /// the end, as `kind` asks.
    pub(crate) async fn read_whole(
        &self,
        question: &str,
        kind: Kind,
        opts: &AskOptions,
        tx: &mpsc::Sender<AnswerEvent>,
    ) -> Result<()> {
        let started = Instant::now();
        let _reading = opts.read.waiting.reading();
        let store = &self.retriever.store;
        let ids = &opts.filter.documents;
        let mut docs: Vec<DocumentRecord> = store.documents_by_id(ids).await?;
        docs.retain(|d| d.state == DocState::Indexed);
        docs.sort_by_key(|d| ids.iter().position(|i| *i == d.id));
        if docs.is_empty() {
            bail!("none of the documents asked about is indexed");
        }
        let mut chunks: Vec<(usize, ChunkRecord)> = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            let mut c = store.document_chunks(&d.id).await?;
            c.sort_by_key(|c| chunk_ordinal(&c.id));
            chunks.extend(c.into_iter().map(|c| (i, c)));
        }
        let generator = Arc::clone(&self.generator);
        let g = Arc::clone(&generator);
        let mut pieces = tokio::task::spawn_blocking(move || pieces_of(chunks, g.as_ref())).await?;
        // The pages in scope of each document: all of them, or the part the
        // question names ("chapter 3", "pages 10-20").
        let mut ranges: Vec<Option<(u32, u32)>> =
            docs.iter().map(|d| Some((1, d.pages.max(1)))).collect();
        let part = part::part_of(question);
        if let Some(part) = &part {
            let g = Arc::clone(&generator);
            let n = docs.len();
            let p = part.clone();
            let (cut, r) =
                tokio::task::spawn_blocking(move || cut_part(pieces, n, &p, g.as_ref())).await?;
            pieces = cut;
            ranges = r;
            if pieces.is_empty() {
                let names: Vec<&str> = docs.iter().map(|d| d.path.as_str()).collect();
                let text = format!(
                    "{} was not found in {}: no heading such as \"{}\" outside a table of \
                     contents. Ask about pages instead, for example \"summarize pages 10-20\".",
                    capitalized(&part.words()),
                    names.join(", "),
                    match part {
                        part::Part::Numbered(n) if n.len() == 1 => format!("Chapter {}", n[0]),
                        _ => part.words(),
                    }
                );
                for ev in [
                    AnswerEvent::Token(text),
                    AnswerEvent::Citations(Sources::map(Vec::new(), "")),
                    AnswerEvent::Done(GenerationStats::default()),
                ] {
                    if tx.send(ev).await.is_err() {
                        break;
                    }
                }
                return Ok(());
            }
        }
        let pages_total: u32 = ranges.iter().flatten().map(|(a, b)| b - a + 1).sum();

        // The budget: the first `max_read_tokens` of text, and a plain word on the rest.
        let all_tokens: usize = pieces.iter().map(|p| p.tokens).sum();
        let mut read = 0;
        let mut kept = 0;
        for p in &pieces {
            if read + p.tokens > opts.read.max_read_tokens.max(1) {
                break;
            }
            read += p.tokens;
            kept += 1;
        }
        let skipped = (kept < pieces.len()).then(|| {
            let first = &pieces[kept];
            format!(
                "The scope holds about {} tokens of text and one question reads at most {}: \
                 {} from page {} on is left out. Ask about fewer documents or a part of one \
                 to read the rest.",
                thousands(all_tokens),
                thousands(opts.read.max_read_tokens),
                docs[first.doc].path,
                first.page
            )
        });
        let pieces = &pieces[..kept];
        let pages_read = if skipped.is_some() {
            pages_done(&ranges, pieces, pieces.len())
        } else {
            pages_total
        };
        let part = part.map(|p| {
            let spans: Vec<String> = docs
                .iter()
                .zip(&ranges)
                .filter_map(|(d, r)| {
                    r.map(|(a, b)| {
                        let pages = if a == b {
                            format!("page {a}")
                        } else {
                            format!("pages {a}-{b}")
                        };
                        if docs.len() > 1 {
                            format!("{pages} of {}", d.path)
                        } else {
                            pages
                        }
                    })
                })
                .collect();
            match p {
                part::Part::Pages(..) => spans.join(", "),
                _ => format!("{}, {}", p.words(), spans.join(", ")),
            }
        });
        let mut coverage = Coverage {
            part,
            pages_read,
            pages_total,
            passages: pieces.len(),
            windows: 0,
            from_cache: 0,
        };
        let progress = |done: usize, total: usize, from_cache: usize| ReadProgress {
            kind,
            windows_done: done,
            windows_total: total,
            from_cache,
            pages_read: 0,
            pages_total,
            passages_read: 0,
            passages_total: pieces.len(),
            elapsed_ms: started.elapsed().as_millis() as u64,
            eta_ms: None,
            window: None,
            notes: Vec::new(),
            skipped: None,
            finished: false,
        };

        let answer_tokens = opts.params.max_tokens as usize;
        let ctx = generator.context_size();
        let read_tokens: usize = pieces.iter().map(|p| p.tokens).sum();
        if !kind.is_itemized() && read_tokens + MAP_OVERHEAD + answer_tokens + 64 <= ctx {
            // It fits: the pages go in whole.
            let mut first = progress(0, 1, 0);
            first.skipped = skipped;
            if tx.send(AnswerEvent::Reading(first)).await.is_err() {
                return Ok(());
            }
            let citations = page_citations(&docs, pieces);
            let user = numbered(question, &citations);
            let prompt = generator.render_prompt(WHOLE, &user);
            coverage.windows = 1;
            return self
                .finish(
                    prompt, citations, opts, &coverage, started, tx, 1, kind, None,
                )
                .await;
        }

        let note_tokens = if kind.is_itemized() {
            ITEM_TOKENS
        } else {
            NOTE_TOKENS
        };
        let budget = if opts.read.window_tokens > 0 {
            opts.read.window_tokens
        } else {
            ctx.saturating_sub(MAP_OVERHEAD + note_tokens as usize + 64)
                .max(256)
        };
        let windows = plan_windows(pieces, budget);
        coverage.windows = windows.len();
        let cache = NoteCache(opts.read.cache_dir.clone());
        let mut first = progress(0, windows.len(), 0);
        first.skipped = skipped;
        if tx.send(AnswerEvent::Reading(first)).await.is_err() {
            return Ok(());
        }
        let mut notes_of: Vec<Vec<Note>> = Vec::new();
        let mut from_cache = 0;
        let mut read_ms: Vec<u64> = Vec::new();
        let mut passages_read = 0;
        for (wi, w) in windows.iter().enumerate() {
            let ps = &pieces[w.pieces.clone()];
            let key = cache_key(generator.id(), kind, question, ps);
            let notes = if let Some(n) = cache.get(&key) {
                from_cache += 1;
                n
            } else {
                if !wait_turn(&opts.read.waiting, tx).await {
                    return Ok(());
                }
                let t = Instant::now();
                let doc = &docs[ps[0].doc];
                let user = format!(
                    "{} ({}):\n\n{}\n\nQuestion: {}",
                    doc.path,
                    page_words(ps),
                    window_text(ps),
                    question.trim()
                );
                let system = match kind {
                    Kind::List | Kind::Count => MAP_LIST,
                    Kind::Summary | Kind::Outline | Kind::Timeline => MAP_SUMMARY,
                    Kind::Compare | Kind::Question => MAP_NOTES,
                };
                let prompt = generator.render_prompt(system, &user);
                let params = map_params(&opts.params, note_tokens);
                let Some(raw) = generate_quiet(&generator, prompt, params, tx).await? else {
                    return Ok(());
                };
                let notes = parse_notes(&raw, kind, ps);
                tracing::debug!(window = wi, raw, kept = notes.len(), "window read");
                cache.put(&key, &notes);
                read_ms.push(t.elapsed().as_millis() as u64);
                notes
            };
            passages_read += ps.len();
            let left = windows.len() - wi - 1;
            let per = if read_ms.is_empty() {
                0
            } else {
                read_ms.iter().sum::<u64>() / read_ms.len() as u64
            };
            let mut p = progress(wi + 1, windows.len(), from_cache);
            p.passages_read = passages_read;
            p.pages_read = pages_done(&ranges, pieces, w.pieces.end);
            p.eta_ms = (!read_ms.is_empty()).then_some(per * left as u64);
            p.window = Some(window_location(&docs, ps));
            p.notes = notes.clone();
            if tx.send(AnswerEvent::Reading(p)).await.is_err() {
                return Ok(());
            }
            notes_of.push(notes);
        }
        coverage.from_cache = from_cache;
        if from_cache < windows.len() {
            let max = opts.read.cache_bytes;
            tokio::task::spawn_blocking(move || cache.trim(max));
        }

        if kind.is_itemized() {
            return self
                .list_answer(
                    &docs, pieces, &windows, &notes_of, kind, &coverage, started, tx,
                )
                .await;
        }
        // Merge: the notes of each window as a numbered passage; levels of merging
        // while they do not fit beside the answer.
        let mut groups: Vec<Citation> = windows
            .iter()
            .zip(&notes_of)
            .filter(|(_, n)| !n.is_empty())
            .enumerate()
            .map(|(i, (w, n))| {
                let ps = &pieces[w.pieces.clone()];
                notes_citation(i + 1, window_location(&docs, ps), n)
            })
            .collect();
        if groups.is_empty() {
            let text = "Nothing in the pages read answers this.".to_string();
            let _ = tx.send(AnswerEvent::Token(text)).await;
            return self
                .close(
                    Sources::map(Vec::new(), ""),
                    &coverage,
                    started,
                    tx,
                    windows.len(),
                    kind,
                    None,
                )
                .await;
        }
        let room = ctx.saturating_sub(MAP_OVERHEAD + answer_tokens + 64);
        let mut level = 0;
        loop {
            let user = numbered(question, &groups);
            let tokens = generator.count_tokens(&user);
            if tokens <= room || level >= MAX_LEVELS || groups.len() == 1 {
                let prompt = generator.render_prompt(REDUCE, &user);
                let tail = (matches!(kind, Kind::Summary | Kind::Outline | Kind::Timeline)
                    && groups.len() > 1)
                    .then(|| part_by_part(question, &groups));
                return self
                    .finish(
                        prompt,
                        groups,
                        opts,
                        &coverage,
                        started,
                        tx,
                        windows.len(),
                        kind,
                        tail,
                    )
                    .await;
            }
            level += 1;
            // Consecutive groups whose notes fit together are merged into one.
            let batches = batches(groups, room, |g| generator.count_tokens(&g.snippet) + 16);
            let mut merged = Vec::new();
            for batch in batches {
                let Some(c) = self
                    .merge(question, &batch, merged.len() + 1, opts, tx)
                    .await?
                else {
                    return Ok(());
                };
                merged.push(c);
            }
            groups = merged;
        }
    }

    /// Merges the notes of `batch` into one passage numbered `n` (covering their
    /// pages); `None` when the client went away.
    async fn merge(
        &self,
        question: &str,
        batch: &[Citation],
        n: usize,
        opts: &AskOptions,
        tx: &mpsc::Sender<AnswerEvent>,
    ) -> Result<Option<Citation>> {
        if !wait_turn(&opts.read.waiting, tx).await {
            return Ok(None);
        }
        let user = numbered(question, batch);
        let prompt = self.generator.render_prompt(MERGE, &user);
        let params = map_params(&opts.params, NOTE_TOKENS * 2);
        let Some(raw) = generate_quiet(&self.generator, prompt, params, tx).await? else {
            return Ok(None);
        };
        // Each merged note is kept when the notes it merges hold it.
        let all: String = batch
            .iter()
            .map(|c| c.snippet.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let lower = all.to_lowercase();
        let mut notes: Vec<Note> = Vec::new();
        for line in raw.lines() {
            let (text, page) = split_page(line.trim().trim_start_matches(['-', '*', '•']).trim());
            if !text.is_empty() && check::holds(&text, &lower) {
                notes.push(Note {
                    text,
                    page: page.unwrap_or(batch[0].at.page_start),
                });
            }
        }
        if notes.is_empty() {
            // Nothing kept: the notes themselves go on, shortened to their first lines.
            for c in batch {
                for line in c.snippet.lines().take(2) {
                    let (text, page) = split_page(line.trim_start_matches("- "));
                    notes.push(Note {
                        text,
                        page: page.unwrap_or(c.at.page_start),
                    });
                }
            }
        }
        let mut at = batch[0].at.clone();
        let last = &batch[batch.len() - 1].at;
        if last.document_id == at.document_id {
            at.page_end = last.page_end;
        }
        Ok(Some(notes_citation(n, at, &notes)))
    }

    /// Streams the final answer of `prompt` over `citations`, then the sources and
    /// the coverage.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        prompt: String,
        citations: Vec<Citation>,
        opts: &AskOptions,
        coverage: &Coverage,
        started: Instant,
        tx: &mpsc::Sender<AnswerEvent>,
        windows: usize,
        kind: Kind,
        tail: Option<String>,
    ) -> Result<()> {
        if !wait_turn(&opts.read.waiting, tx).await {
            return Ok(());
        }
        let Some((stats, mut answer)) = crate::answer::rag::generate(
            Arc::clone(&self.generator),
            prompt,
            opts.params.clone(),
            tx,
        )
        .await?
        else {
            return Ok(());
        };
        if let Some(tail) = tail {
            if tx.send(AnswerEvent::Token(tail.clone())).await.is_err() {
                return Ok(());
            }
            answer.push_str(&tail);
        }
        let sources = Sources::map(citations, &answer);
        self.close(sources, coverage, started, tx, windows, kind, Some(stats))
            .await
    }

    /// The answer of a list or a count: the items every window found, merged in
    /// document order, each citing the window it was found in.
    #[allow(clippy::too_many_arguments)]
    async fn list_answer(
        &self,
        docs: &[DocumentRecord],
        pieces: &[Piece],
        windows: &[Window],
        notes_of: &[Vec<Note>],
        kind: Kind,
        coverage: &Coverage,
        started: Instant,
        tx: &mpsc::Sender<AnswerEvent>,
    ) -> Result<()> {
        let mut citations: Vec<Citation> = Vec::new();
        // item (lower-cased) → (as written, pages, source number)
        let mut items: Vec<(String, String, Vec<(String, u32)>, usize)> = Vec::new();
        for (w, notes) in windows.iter().zip(notes_of) {
            if notes.is_empty() {
                continue;
            }
            let ps = &pieces[w.pieces.clone()];
            let n = citations.len() + 1;
            citations.push(notes_citation(n, window_location(docs, ps), notes));
            let doc = &docs[ps[0].doc];
            for note in notes {
                let key = note.text.to_lowercase();
                match items.iter_mut().find(|i| i.0 == key) {
                    Some(i) => {
                        if !i.2.iter().any(|(d, p)| *d == doc.path && *p == note.page) {
                            i.2.push((doc.path.clone(), note.page));
                        }
                    }
                    None => items.push((
                        key,
                        note.text.clone(),
                        vec![(doc.path.clone(), note.page)],
                        n,
                    )),
                }
            }
        }
        let several = docs.len() > 1;
        let mut text = if items.is_empty() {
            "None found in the pages read.".to_string()
        } else if kind == Kind::Count {
            format!("{} found:\n", items.len())
        } else {
            format!("{} items found:\n", items.len())
        };
        for (_, item, places, n) in &items {
            let pages: Vec<String> = places
                .iter()
                .map(|(d, p)| {
                    if several {
                        format!("{d} p. {p}")
                    } else {
                        format!("p. {p}")
                    }
                })
                .collect();
            text.push_str(&format!("- {item} ({}) [{n}]\n", pages.join(", ")));
        }
        let text = text.trim_end().to_string();
        if tx.send(AnswerEvent::Token(text.clone())).await.is_err() {
            return Ok(());
        }
        let stats = GenerationStats {
            ttft_ms: started.elapsed().as_millis() as u64,
            ..GenerationStats::default()
        };
        // The items are checked against their windows' notes; the heading claims
        // nothing.
        let items_only: Vec<&str> = text.lines().filter(|l| l.starts_with("- ")).collect();
        let sources = Sources::map(citations, &items_only.join("\n"));
        self.close(
            sources,
            coverage,
            started,
            tx,
            windows.len(),
            kind,
            Some(stats),
        )
        .await
    }

    /// Sends the coverage sentence, the sources, the last progress event and the
    /// figures.
    #[allow(clippy::too_many_arguments)]
    async fn close(
        &self,
        sources: Sources,
        coverage: &Coverage,
        started: Instant,
        tx: &mpsc::Sender<AnswerEvent>,
        windows: usize,
        kind: Kind,
        stats: Option<GenerationStats>,
    ) -> Result<()> {
        let took = started.elapsed();
        let last = ReadProgress {
            kind,
            windows_done: windows,
            windows_total: windows,
            from_cache: coverage.from_cache,
            pages_read: coverage.pages_read,
            pages_total: coverage.pages_total,
            passages_read: coverage.passages,
            passages_total: coverage.passages,
            elapsed_ms: took.as_millis() as u64,
            eta_ms: Some(0),
            window: None,
            notes: Vec::new(),
            skipped: None,
            finished: true,
        };
        for ev in [
            AnswerEvent::Token(coverage.sentence(took)),
            AnswerEvent::Reading(last),
            AnswerEvent::Citations(sources),
            AnswerEvent::Done(stats.unwrap_or_default()),
        ] {
            if tx.send(ev).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Notes of each part a summary, an outline or a timeline gives after the model's
/// overview (with many parts, fewer of each).
fn part_notes(parts: usize) -> usize {
    if parts > 8 { 2 } else { 3 }
}

/// The parts of a summary, an outline or a timeline in document order: the first
/// notes of each, with their pages, citing the part. They follow the model's
/// overview, which from a small model tells of the first parts only (BENCHMARKS.md,
/// "Whole documents").
fn part_by_part(question: &str, groups: &[Citation]) -> String {
    let heading = if lang::of(question) == lang::Lang::Italian {
        "Parte per parte:"
    } else {
        "Part by part:"
    };
    let mut out = format!("\n\n{heading}\n");
    for g in groups {
        for line in g
            .snippet
            .lines()
            .map(|l| l.trim().trim_start_matches("- ").trim())
            .filter(|l| !l.is_empty())
            .take(part_notes(groups.len()))
        {
            out.push_str(&format!("- {line} [{}]\n", g.n));
        }
    }
    out.trim_end().to_string()
}

/// `items` in order, cut into runs whose sizes add up to at most `room` (an item
/// larger than `room` is a run of its own).
fn batches<T>(items: Vec<T>, room: usize, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![Vec::new()];
    let mut used = 0;
    for item in items {
        let n = size(&item);
        if used + n > room && out.last().is_some_and(|b| !b.is_empty()) {
            out.push(Vec::new());
            used = 0;
        }
        used += n;
        out.last_mut().expect("one run at least").push(item);
    }
    out.retain(|b| !b.is_empty());
    out
}

/// A partial answer from the notes received before the reading stopped.
pub fn partial_answer(notes: &[Note], done: usize, total: usize) -> String {
    let mut out =
        format!("Partial answer: stopped after {done} of {total} windows. Notes so far:\n");
    for n in notes {
        out.push_str(&format!("- {} (p. {})\n", n.text, n.page));
    }
    out.trim_end().to_string()
}

/// The chunks in order, each with its overlap with the one before (same page)
/// cut off, and its tokens for `generator`.
fn pieces_of(chunks: Vec<(usize, ChunkRecord)>, generator: &dyn Generator) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::with_capacity(chunks.len());
    let mut prev: Option<(usize, u32, u32)> = None;
    for (doc, c) in chunks {
        let at = &c.at;
        let mut text = c.text.as_str();
        if let Some((d, page, end)) = prev
            && d == doc
            && page == at.page_start
            && at.byte_start < end
        {
            let cut = (end - at.byte_start) as usize;
            if cut < text.len() && text.is_char_boundary(cut) {
                text = &text[cut..];
            }
        }
        prev = Some((doc, at.page_end, at.byte_end));
        let text = text.to_string();
        out.push(Piece {
            doc,
            page: at.page_start,
            tokens: generator.count_tokens(&text),
            text,
            hash: c.hash,
        });
    }
    out
}

/// "pages 3-9" of a window.
fn page_words(ps: &[Piece]) -> String {
    let (a, b) = (ps[0].page, ps[ps.len() - 1].page);
    if a == b {
        format!("page {a}")
    } else {
        format!("pages {a}-{b}")
    }
}

/// The place of a window: its document and pages.
fn window_location(docs: &[DocumentRecord], ps: &[Piece]) -> Location {
    let d = &docs[ps[0].doc];
    Location {
        document_id: d.id.clone(),
        collection: d.collection.clone(),
        path: d.path.clone(),
        page_start: ps[0].page,
        page_end: ps[ps.len() - 1].page,
        byte_start: 0,
        byte_end: 0,
        match_start: 0,
        match_end: 0,
    }
}

/// Pages read once the pieces before `end` are, of the pages in scope of each
/// document (`ranges`).
fn pages_done(ranges: &[Option<(u32, u32)>], pieces: &[Piece], end: usize) -> u32 {
    let Some(last) = end.checked_sub(1).and_then(|i| pieces.get(i)) else {
        return 0;
    };
    let before: u32 = ranges[..last.doc]
        .iter()
        .flatten()
        .map(|(a, b)| b - a + 1)
        .sum();
    let first = ranges[last.doc].map_or(1, |(a, _)| a);
    before + last.page.saturating_sub(first) + 1
}

/// The pieces of the part `part` of each of `docs` documents, and the pages it
/// spans in each (`None` where the document has no such part).
fn cut_part(
    pieces: Vec<Piece>,
    docs: usize,
    part: &part::Part,
    generator: &dyn Generator,
) -> (Vec<Piece>, Vec<Option<(u32, u32)>>) {
    let mut out = Vec::new();
    let mut ranges = vec![None; docs];
    for run in doc_runs(&pieces) {
        let these = &pieces[run];
        let doc = these[0].doc;
        let texts: Vec<(u32, &str)> = these.iter().map(|p| (p.page, p.text.as_str())).collect();
        if let Some(span) = part::locate(part, &texts) {
            let line = |(i, b): (usize, usize)| {
                these[i].text[b..].lines().next().unwrap_or("").to_string()
            };
            tracing::debug!(
                part = part.words(),
                from = line(span.start),
                to = span.end.map(line),
                "part found"
            );
            let (last, last_byte) = span.end.unwrap_or((these.len(), 0));
            for (i, p) in these.iter().enumerate().take(last + 1).skip(span.start.0) {
                let from = if i == span.start.0 { span.start.1 } else { 0 };
                let to = if i == last { last_byte } else { p.text.len() };
                if to <= from || p.text[from..to].trim().is_empty() {
                    continue;
                }
                let mut piece = p.clone();
                if from > 0 || to < p.text.len() {
                    piece.text = p.text[from..to].to_string();
                    piece.tokens = generator.count_tokens(&piece.text);
                    piece.hash = format!("{}:{from}-{to}", p.hash);
                }
                out.push(piece);
            }
            let kept = out.iter().filter(|p: &&Piece| p.doc == doc);
            let first = kept.clone().map(|p| p.page).min();
            let lastp = kept.map(|p| p.page).max();
            if let (Some(a), Some(b)) = (first, lastp) {
                ranges[doc] = Some((a, b));
            }
        }
    }
    (out, ranges)
}

/// "Chapter 3" of "chapter 3".
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A source made of notes.
fn notes_citation(n: usize, at: Location, notes: &[Note]) -> Citation {
    let snippet: Vec<String> = notes
        .iter()
        .map(|x| format!("- {} (p. {})", x.text, x.page))
        .collect();
    Citation {
        n,
        at,
        snippet: snippet.join("\n"),
        score: 0.0,
        cited: false,
        supported: None,
        found: false,
        ocr: false,
    }
}

/// One source per page of the pieces.
fn page_citations(docs: &[DocumentRecord], pieces: &[Piece]) -> Vec<Citation> {
    let mut out: Vec<Citation> = Vec::new();
    let mut i = 0;
    while i < pieces.len() {
        let j = pieces[i..]
            .iter()
            .position(|p| p.doc != pieces[i].doc || p.page != pieces[i].page)
            .map_or(pieces.len(), |n| i + n);
        let ps = &pieces[i..j];
        let text: Vec<&str> = ps.iter().map(|p| p.text.trim()).collect();
        out.push(Citation {
            n: out.len() + 1,
            at: window_location(docs, ps),
            snippet: text.join("\n"),
            score: 0.0,
            cited: false,
            supported: None,
            found: false,
            ocr: false,
        });
        i = j;
    }
    out
}

/// The user turn: the numbered sources, then the question.
fn numbered(question: &str, sources: &[Citation]) -> String {
    let mut user = String::new();
    for c in sources {
        user.push_str(&format!(
            "Passage [{}] ({}, {}):\n{}\n\n",
            c.n,
            c.at.path,
            c.at.pages(),
            c.snippet.trim()
        ));
    }
    user.push_str(&format!("Question: {}", question.trim()));
    user
}

/// Sampling of notes: cooler than an answer, and shorter.
fn map_params(base: &GenerationParams, max_tokens: u32) -> GenerationParams {
    GenerationParams {
        max_tokens,
        temperature: base.temperature.min(0.2),
        ignore_eos: false,
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(doc: usize, page: u32, tokens: usize, text: &str) -> Piece {
        Piece {
            doc,
            page,
            text: text.to_string(),
            hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
            tokens,
        }
    }

    #[test]
    fn questions_about_a_whole_document_are_recognized_in_english_and_italian() {
        assert_eq!(kind_of("Summarize this report"), Some(Kind::Summary));
        assert_eq!(kind_of("Riassumi il contratto"), Some(Kind::Summary));
        assert_eq!(
            kind_of("List every deadline in this contract"),
            Some(Kind::List)
        );
        assert_eq!(kind_of("Elenca tutte le scadenze"), Some(Kind::List));
        assert_eq!(kind_of("How many tables mention Q3?"), Some(Kind::Count));
        assert_eq!(kind_of("Quante tabelle citano il Q3?"), Some(Kind::Count));
        assert_eq!(
            kind_of("What changed between version 1 and 2? Compare them"),
            Some(Kind::Compare)
        );
        assert_eq!(kind_of("Give me an outline"), Some(Kind::Outline));
        assert_eq!(kind_of("What does R_HOME point to?"), None);
        assert_eq!(
            route("Summarize it", Reading::Auto, false),
            None,
            "no scope: retrieval"
        );
        assert_eq!(
            route("Summarize it", Reading::Auto, true),
            Some(Kind::Summary)
        );
        assert_eq!(route("Summarize it", Reading::Retrieve, true), None);
        assert_eq!(
            route("What is R_HOME?", Reading::Whole, true),
            Some(Kind::Question)
        );
    }

    #[test]
    fn windows_are_page_blocks_so_an_edit_changes_one_window() {
        // 20 pages of 100 tokens, a budget of 450: blocks of 4 pages.
        let pieces: Vec<Piece> = (1..=20)
            .flat_map(|p| {
                [
                    piece(0, p, 50, &format!("a{p}")),
                    piece(0, p, 50, &format!("b{p}")),
                ]
            })
            .collect();
        let w = plan_windows(&pieces, 450);
        assert_eq!(w.len(), 5);
        assert!(w.iter().all(|w| w.pieces.len() == 8));
        // Page 6 grows by 40 tokens: the same windows.
        let mut edited = pieces.clone();
        edited[11].tokens += 40;
        let e = plan_windows(&edited, 450);
        let ranges = |w: &[Window]| w.iter().map(|w| w.pieces.clone()).collect::<Vec<_>>();
        assert_eq!(ranges(&w), ranges(&e));
        // A block over the budget is cut, and a second document starts a window.
        let mut two = pieces[..8].to_vec();
        two[0].tokens = 400;
        two.push(piece(1, 1, 30, "c"));
        let t = plan_windows(&two, 450);
        assert!(t.iter().all(|w| {
            two[w.pieces.clone()]
                .iter()
                .map(|p| p.tokens)
                .sum::<usize>()
                <= 450
                || w.pieces.len() == 1
        }));
        assert_eq!(two[t.last().unwrap().pieces.clone()][0].doc, 1);
    }

    #[test]
    fn notes_are_kept_only_where_the_window_holds_them() {
        let ps = vec![
            piece(
                0,
                3,
                10,
                "Set R_HOME to the home directory. TMPDIR holds temporary files.",
            ),
            piece(
                0,
                4,
                10,
                "The variable R_LIBS lists library folders. _R_CHECK_X_ too.",
            ),
        ];
        let raw = "- R_HOME (p. 3)\n- `R_LIBS` (p. 3)\n- JAVA_HOME (p. 4)\nNONE\n- TMPDIR: temporary files (p. 9)\n- R_CHECK_X_ . . . . 57 (p. 4)";
        let notes = parse_notes(raw, Kind::List, &ps);
        assert_eq!(
            notes,
            vec![
                Note {
                    text: "R_HOME".into(),
                    page: 3
                },
                Note {
                    text: "R_LIBS".into(),
                    page: 4
                },
                Note {
                    text: "TMPDIR".into(),
                    page: 3
                },
                Note {
                    text: "_R_CHECK_X_".into(),
                    page: 4
                },
            ],
            "a made-up item is dropped, a wrong page is mended, a name cut short is whole"
        );
        let summary = parse_notes(
            "- The variable R_LIBS lists library folders (p. 4)\n- Python 3.12 is required (p. 3)",
            Kind::Summary,
            &ps,
        );
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].page, 4);
    }

    #[test]
    fn notes_that_do_not_fit_are_merged_in_runs_that_do() {
        let sizes = vec![300, 300, 500, 900, 100, 100];
        let runs = batches(sizes, 800, |n| *n);
        assert_eq!(
            runs,
            vec![vec![300, 300], vec![500], vec![900], vec![100, 100]]
        );
        assert!(batches(Vec::<usize>::new(), 800, |n| *n).is_empty());
    }

    #[test]
    fn overlapping_chunks_are_read_once_and_keys_follow_the_text() {
        assert_eq!(
            split_page("Deadline 3 May (p. 12)"),
            ("Deadline 3 May".into(), Some(12))
        );
        assert_eq!(split_page("no page"), ("no page".into(), None));
        assert_eq!(thousands(1012), "1,012");
        let a = vec![piece(0, 1, 5, "x")];
        let b = vec![piece(0, 1, 5, "y")];
        assert_ne!(
            cache_key("m", Kind::Summary, "q", &a),
            cache_key("m", Kind::Summary, "q", &b)
        );
        assert_eq!(
            cache_key("m", Kind::Summary, "summarize it", &a),
            cache_key("m", Kind::Summary, "give an overview", &a),
            "a summary's notes serve every summary"
        );
        assert_ne!(
            cache_key("m", Kind::List, "list every date", &a),
            cache_key("m", Kind::List, "list every name", &a)
        );
    }
    #[test]
    fn the_notes_cache_keeps_the_notes_used_last() {
        let dir = tempfile::tempdir().unwrap();
        let cache = NoteCache(Some(dir.path().to_path_buf()));
        let note = |i: usize| {
            vec![Note {
                text: format!("note {i:02} {}", "x".repeat(80)),
                page: 1,
            }]
        };
        let keys: Vec<String> = (0..40)
            .map(|i| blake3::hash(&[i as u8]).to_hex().to_string())
            .collect();
        let t0 = std::time::SystemTime::now() - Duration::from_secs(1000);
        for (i, k) in keys.iter().enumerate() {
            cache.put(k, &note(i));
            // Written in order, a second apart.
            let f = std::fs::File::options()
                .write(true)
                .open(cache.file(k).unwrap())
                .unwrap();
            f.set_modified(t0 + Duration::from_secs(i as u64)).unwrap();
        }
        let one = std::fs::metadata(cache.file(&keys[0]).unwrap())
            .unwrap()
            .len();
        // The oldest is used again: it stays.
        assert_eq!(cache.get(&keys[0]), Some(note(0)));
        cache.trim(one * 40);
        assert!(
            keys.iter().all(|k| cache.get(k).is_some()),
            "under the bound"
        );
        for (i, k) in keys.iter().enumerate().skip(1) {
            let f = std::fs::File::options()
                .write(true)
                .open(cache.file(k).unwrap())
                .unwrap();
            f.set_modified(t0 + Duration::from_secs(i as u64)).unwrap();
        }
        cache.trim(one * 20);
        let kept: Vec<usize> = (0..40)
            .filter(|i| cache.file(&keys[*i]).unwrap().exists())
            .collect();
        assert_eq!(
            kept.len(),
            15,
            "trimmed to three quarters of the bound: {kept:?}"
        );
        assert!(kept.contains(&0), "the one used last stays: {kept:?}");
        assert_eq!(
            kept[1..],
            (26..40).collect::<Vec<_>>()[..],
            "the oldest go first"
        );
    }
    #[test]
    fn a_summary_of_many_parts_gives_each_part() {
        let part = |n: usize, notes: &str| Citation {
            n,
            at: Location {
                document_id: "d".into(),
                collection: "c".into(),
                path: "manual.pdf".into(),
                page_start: n as u32 * 4 - 3,
                page_end: n as u32 * 4,
                byte_start: 0,
                byte_end: 0,
                match_start: 0,
                match_end: 0,
            },
            snippet: notes.into(),
            score: 0.0,
            cited: false,
            supported: None,
            found: false,
            ocr: false,
        };
        let groups = [
            part(
                1,
                "- SEXPs are nodes (p. 2)\n- A header of 64 bits (p. 3)\n- x (p. 3)\n- y (p. 4)",
            ),
            part(2, "- Environments hold frames (p. 6)"),
        ];
        let tail = part_by_part("Summarize chapter 1", &groups);
        assert_eq!(
            tail,
            "\n\nPart by part:\n- SEXPs are nodes (p. 2) [1]\n- A header of 64 bits (p. 3) [1]\n\
             - x (p. 3) [1]\n- Environments hold frames (p. 6) [2]"
        );
        assert!(
            part_by_part("Riassumi il capitolo 1", &groups).starts_with("\n\nParte per parte:")
        );
    }
}
