//! Settings: defaults < `docchat.toml` < `DOCCHAT_*` environment < flags, and the
//! watch-dirs file.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// File name of the default chat model in the models directory.
pub const DEFAULT_CHAT_MODEL: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
/// Directory name of the default embedding checkpoint in the models directory.
pub const DEFAULT_EMBEDDING_SOURCE: &str = "all-MiniLM-L6-v2";
/// File name of the default embedding model (imported from the checkpoint).
pub const DEFAULT_EMBEDDING_MODEL: &str = "all-MiniLM-L6-v2.gguf";

/// Options read from `docchat.toml` (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    /// Where the index and the chats are shared with other docchat processes:
    /// `s3://bucket/prefix` or a folder.
    pub store: Option<String>,
    /// Options of the object store: `aws_endpoint`, `aws_region`,
    /// `aws_access_key_id`, `aws_secret_access_key`, `allow_http` … (the
    /// `AWS_*` environment is read too).
    #[serde(default)]
    pub store_options: std::collections::BTreeMap<String, String>,
    /// How stale a reader's view of the shared store may be, in seconds.
    pub store_refresh_s: Option<f64>,
    /// An OpenAI-compatible server (`http://HOST:PORT/v1`) that writes the answers
    /// instead of the chat model.
    pub generator: Option<String>,
    /// An OpenAI-compatible server (`http://HOST:PORT/v1`) that embeds the questions
    /// instead of the embedding model (its vectors must be the index's).
    pub embedder: Option<String>,
    pub models_dir: Option<PathBuf>,
    pub chat_model: Option<PathBuf>,
    pub embedding_model: Option<PathBuf>,
    pub watch_dirs: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub threads: Option<i32>,
    pub ctx_size: Option<u32>,
    pub gpu_layers: Option<u32>,
    pub batch_size: Option<u32>,
    pub ubatch_size: Option<u32>,
    pub flash_attn: Option<docchat_llm::FlashAttention>,
    pub mmap: Option<bool>,
    pub cpu_moe: Option<bool>,
    pub extract_timeout_s: Option<u64>,
    pub extract_memory_mb: Option<u64>,
    /// Files larger than this, in MB, are not read (failed, with the reason).
    pub max_file_mb: Option<u64>,
    /// Read PDF pages without a text layer, and images, by OCR (default: on
    /// when Tesseract is installed).
    pub ocr: Option<bool>,
    /// OCR languages, Tesseract's codes (default: every installed one).
    pub ocr_languages: Option<Vec<String>>,
    /// Time limit of OCR of one page, in seconds.
    pub ocr_page_timeout_s: Option<u64>,
    /// The parents of folders the browser and the API may add (default: the
    /// user's home). The watch-dirs file is not limited.
    pub allowed_folders: Option<Vec<PathBuf>>,
    /// Where `docchat models pull` downloads from.
    pub models_endpoint: Option<String>,
    /// Largest upload from the browser, in MB.
    pub max_upload_mb: Option<usize>,
    /// Requests that may wait for a model while one runs (then 503).
    pub max_queue: Option<usize>,
    /// File holding the API key.
    pub api_key_file: Option<PathBuf>,
    /// keys.toml: several API keys, each with a name and the collections it may read.
    pub keys_file: Option<PathBuf>,
    /// Host names the browser may use besides the loopback names.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// The instruction an instruction-tuned chat model is given before the
    /// passages, in place of docchat's own (grounded, cited, a plain refusal).
    pub instruction: Option<String>,
    /// `[retrieval]`: how questions find passages.
    #[serde(default)]
    pub retrieval: RetrievalConfig,
    /// `[reading]`: questions about whole documents.
    #[serde(default)]
    pub reading: ReadingConfig,
}

/// The `[reading]` table of `docchat.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadingConfig {
    /// `auto` (the question decides), `retrieve` or `whole`, for questions scoped
    /// to documents.
    pub mode: crate::answer::read::Reading,
    /// Most tokens of text one question reads.
    pub max_read_tokens: usize,
    /// Tokens of text per window (0: what the chat model's context holds).
    pub window_tokens: usize,
    /// Most megabytes of notes kept from earlier readings.
    pub notes_cache_mb: u64,
}

impl Default for ReadingConfig {
    fn default() -> Self {
        Self {
            mode: crate::answer::read::Reading::Auto,
            max_read_tokens: crate::answer::read::MAX_READ_TOKENS,
            window_tokens: 0,
            notes_cache_mb: crate::answer::read::NOTES_CACHE_BYTES >> 20,
        }
    }
}

/// The `[retrieval]` table of `docchat.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalConfig {
    /// `hybrid`, `vector` or `keyword`.
    pub mode: crate::answer::retrieve::SearchMode,
    /// Passages given to the model per question.
    pub top_k: usize,
    /// Weight of the vector ranking in hybrid search.
    pub vector_weight: f32,
    /// Weight of the keyword ranking in hybrid search.
    pub keyword_weight: f32,
    /// The `k` of reciprocal rank fusion.
    pub rrf_k: f32,
    /// Chunks from which on an ANN vector index is built (0: never).
    pub vector_index_min_rows: usize,
    /// Cosine similarity of the nearest chunk under which a question is answered
    /// "the documents do not seem to contain this" without asking the model (0: off).
    pub min_similarity: f32,
    /// Passages an instruction-tuned chat model is given at most.
    pub chat_passages: usize,
    /// Longest passage (bytes) an instruction-tuned chat model is given, cut to
    /// the sentences that hold the question's words (0: whole passages).
    pub passage_bytes: usize,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        let fusion = crate::answer::retrieve::Fusion::default();
        Self {
            mode: crate::answer::retrieve::SearchMode::Hybrid,
            top_k: 6,
            vector_weight: fusion.vector_weight,
            keyword_weight: fusion.keyword_weight,
            rrf_k: fusion.rrf_k,
            vector_index_min_rows: docchat_store::SearchTuning::default().vector_index_min_rows,
            min_similarity: crate::answer::rag::MIN_SIMILARITY,
            chat_passages: crate::answer::rag::CHAT_PASSAGES,
            passage_bytes: crate::answer::rag::PASSAGE_BYTES,
        }
    }
}

impl RetrievalConfig {
    /// The fusion weights.
    pub fn fusion(&self) -> crate::answer::retrieve::Fusion {
        crate::answer::retrieve::Fusion {
            vector_weight: self.vector_weight,
            keyword_weight: self.keyword_weight,
            rrf_k: self.rrf_k,
        }
    }
}

impl FileConfig {
    /// Reads `path`, or `docchat.toml` in the working directory when it exists.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let candidate = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("docchat.toml");
                if !p.exists() {
                    return Ok(Self::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&candidate)
            .with_context(|| format!("cannot read {}", candidate.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid {}", candidate.display()))
    }
}

/// Sets `key = "value"` among the top-level keys of a TOML document, keeping the
/// rest of the text (comments included) as it is: an existing line of that key is
/// replaced, otherwise the line goes after the last top-level key.
pub fn set_top_level_key(text: &str, key: &str, value: &str) -> String {
    let line = format!("{key} = {}", toml::Value::String(value.to_string()));
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let first_table = lines
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .unwrap_or(lines.len());
    let is_key = |l: &str, k: &str| {
        l.trim_start()
            .strip_prefix(k)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    if let Some(i) = lines[..first_table].iter().position(|l| is_key(l, key)) {
        lines[i] = line;
    } else {
        let after = lines[..first_table]
            .iter()
            .rposition(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#')
            })
            .map_or(0, |i| i + 1);
        lines.insert(after, line);
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Default data directory: `$XDG_DATA_HOME/docchat` or `~/.local/share/docchat`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map_or_else(|| home().join(".local/share"), PathBuf::from)
        .join("docchat")
}

/// Default models directory: where the setup script puts the default models.
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map_or_else(|| home().join(".cache"), PathBuf::from)
        .join("docchat/models")
}

/// A watched folder and the collection its documents belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRoot {
    /// Absolute path of the folder.
    pub path: PathBuf,
    /// Collection name.
    pub collection: String,
}

/// Parses a watch-dirs file: one folder per line, `PATH [= collection name]`;
/// `#` starts a comment; `~` is the home directory; relative paths are relative to
/// the file's own folder. The collection defaults to the folder's name.
pub fn parse_watch_dirs(text: &str, base: &Path) -> Result<Vec<WatchRoot>> {
    let mut roots: Vec<WatchRoot> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split_once('#').map_or(raw, |(l, _)| l).trim();
        if line.is_empty() {
            continue;
        }
        let (path, name) = match line.split_once('=') {
            Some((p, c)) => (p.trim(), Some(c.trim())),
            None => (line, None),
        };
        if path.is_empty() {
            bail!("line {}: no folder before '='", n + 1);
        }
        let path = expand(path, base);
        let collection = match name {
            Some(c) if !c.is_empty() => c.to_string(),
            _ => path
                .file_name()
                .map_or_else(|| "documents".into(), |f| f.to_string_lossy().into_owned()),
        };
        if roots.iter().any(|r| r.path == path) {
            continue;
        }
        let root = WatchRoot { path, collection };
        check_new_root(&roots, &root).with_context(|| format!("line {}", n + 1))?;
        roots.push(root);
    }
    Ok(roots)
}

/// Refuses a root that would share a collection name with another (the same
/// document ids, files evicting each other, `forget` removing both) or lie inside
/// or around another (every file below indexed twice).
fn check_new_root(roots: &[WatchRoot], new: &WatchRoot) -> Result<()> {
    for r in roots {
        if r.collection == new.collection {
            bail!(
                "{} and {} would both be the collection {:?}: give one of them its own \
                 name (`PATH = name`)",
                r.path.display(),
                new.path.display(),
                new.collection
            );
        }
        let (outer, inner) = if new.path.starts_with(&r.path) {
            (r, new)
        } else if r.path.starts_with(&new.path) {
            (new, r)
        } else {
            continue;
        };
        bail!(
            "{} (collection {:?}) is inside {} (collection {:?}): its files would be \
             indexed twice; watch only one of them",
            inner.path.display(),
            inner.collection,
            outer.path.display(),
            outer.collection
        );
    }
    Ok(())
}

/// Checks that `path` is a folder docchat can read, for a new collection; returns
/// its canonical path.
pub fn check_folder(path: &Path) -> Result<PathBuf> {
    let abs = std::fs::canonicalize(path)
        .with_context(|| format!("{} does not exist", path.display()))?;
    if !abs.is_dir() {
        bail!("{} is not a folder", abs.display());
    }
    std::fs::read_dir(&abs).with_context(|| format!("{} cannot be read", abs.display()))?;
    Ok(abs)
}

/// Folders of the system, never added from the browser or the API.
const SYSTEM_FOLDERS: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib64",
    "/proc",
    "/root/.ssh",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/usr",
    "/var",
];

/// Whether the browser or the API may add `folder` (canonical): under one of
/// `allowed`, not hidden, not a system folder, not inside the data folder. Any
/// process of the machine can call a server without a key, so a folder it adds
/// must be one the user would share anyway.
pub fn check_shared_folder(folder: &Path, allowed: &[PathBuf], data_dir: &Path) -> Result<()> {
    if folder == Path::new("/")
        || SYSTEM_FOLDERS
            .iter()
            .any(|s| folder.starts_with(s) && !allowed.iter().any(|a| a.starts_with(s)))
    {
        bail!(
            "{} is a system folder: it is not added from the browser or the API",
            folder.display()
        );
    }
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    if folder.starts_with(&data) {
        bail!("{} is inside docchat's data folder", folder.display());
    }
    let parent = allowed
        .iter()
        .map(|a| std::fs::canonicalize(a).unwrap_or_else(|_| a.clone()))
        .find(|a| folder.starts_with(a));
    let Some(parent) = parent else {
        let list: Vec<String> = allowed.iter().map(|a| a.display().to_string()).collect();
        bail!(
            "{} is outside the folders the browser and the API may add ({}): add it to the \
             watch-dirs file, or its parent to allowed_folders in docchat.toml",
            folder.display(),
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            }
        );
    };
    let hidden = folder
        .strip_prefix(&parent)
        .unwrap_or(folder)
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
    if hidden {
        bail!(
            "{} is a hidden folder: it is not added from the browser or the API",
            folder.display()
        );
    }
    Ok(())
}

/// Adds `root` to the watch-dirs text; refuses a name or folder already there.
pub fn add_watch_line(text: &str, base: &Path, root: &WatchRoot) -> Result<String> {
    if root.collection.contains(['#', '=', '\n']) || root.collection.trim().is_empty() {
        bail!("a collection name cannot be empty or contain '#', '=' or a line break");
    }
    let roots = parse_watch_dirs(text, base)?;
    for r in &roots {
        if r.collection == root.collection {
            bail!(
                "a collection named {:?} exists already ({})",
                r.collection,
                r.path.display()
            );
        }
        if r.path == root.path {
            bail!(
                "{} is watched already, as {:?}",
                r.path.display(),
                r.collection
            );
        }
    }
    check_new_root(&roots, root)?;
    let path = root.path.display().to_string();
    if path.contains(['#', '=']) {
        bail!("the folder's path contains '#' or '=', which a watch-dirs file cannot hold");
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{path} = {}\n", root.collection));
    Ok(out)
}

/// Removes the lines of `collection` from the watch-dirs text (comments and other
/// lines stay); returns the new text and how many lines went.
pub fn remove_watch_lines(text: &str, base: &Path, collection: &str) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut removed = 0;
    for line in text.lines() {
        let roots = parse_watch_dirs(line, base)?;
        if roots.first().is_some_and(|r| r.collection == collection) {
            removed += 1;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok((out, removed))
}

fn expand(path: &str, base: &Path) -> PathBuf {
    let p = if path == "~" {
        home()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home().join(rest)
    } else {
        PathBuf::from(path)
    };
    let abs = if p.is_absolute() { p } else { base.join(p) };
    // Canonical where it exists, so notify's event paths match.
    std::fs::canonicalize(&abs).unwrap_or_else(|_| normalize(&abs))
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Reads and parses a watch-dirs file.
pub fn read_watch_dirs(file: &Path) -> Result<Vec<WatchRoot>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read watch-dirs file {}", file.display()))?;
    let base = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    parse_watch_dirs(&text, &base).with_context(|| format!("in {}", file.display()))
}

/// Sets `key = "value"` at the top level of the configuration file `path` (made if
/// missing), keeping its other lines; refuses to write a file docchat could not read.
pub fn write_top_level_key(path: &Path, key: &str, value: &str) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let updated = set_top_level_key(&text, key, value);
    toml::from_str::<FileConfig>(&updated)
        .with_context(|| format!("{} would not be valid", path.display()))?;
    std::fs::write(path, updated).with_context(|| format!("cannot write {}", path.display()))
}

/// Watch roots for the paths given on the command line: each folder (or a file's
/// folder) names its collection unless `collection` is given.
pub fn roots_of(paths: &[PathBuf], collection: Option<&str>) -> Result<Vec<WatchRoot>> {
    let mut roots = Vec::new();
    for p in paths {
        let path =
            std::fs::canonicalize(p).with_context(|| format!("{} does not exist", p.display()))?;
        let collection = collection.map(str::to_string).unwrap_or_else(|| {
            let named = if path.is_dir() {
                Some(path.as_path())
            } else {
                path.parent()
            };
            named
                .and_then(|d| d.file_name())
                .map_or_else(|| "documents".into(), |n| n.to_string_lossy().into_owned())
        });
        roots.push(WatchRoot { path, collection });
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_are_added_and_removed_line_by_line() {
        let base = Path::new("/base");
        let text = "# folders\n/data/papers = papers\n/data/mail\n";
        let root = WatchRoot {
            path: PathBuf::from("/data/cases"),
            collection: "cases".into(),
        };
        let added = add_watch_line(text, base, &root).unwrap();
        assert_eq!(added, format!("{text}/data/cases = cases\n"));
        let dup_name = WatchRoot {
            path: PathBuf::from("/x"),
            collection: "papers".into(),
        };
        assert!(
            add_watch_line(text, base, &dup_name)
                .unwrap_err()
                .to_string()
                .contains("exists already")
        );
        let dup_path = WatchRoot {
            path: PathBuf::from("/data/mail"),
            collection: "post".into(),
        };
        assert!(
            add_watch_line(text, base, &dup_path)
                .unwrap_err()
                .to_string()
                .contains("watched already")
        );
        let (left, n) = remove_watch_lines(&added, base, "papers").unwrap();
        assert_eq!(n, 1);
        assert_eq!(left, "# folders\n/data/mail\n/data/cases = cases\n");
        assert_eq!(remove_watch_lines(&left, base, "mail").unwrap().1, 1);
    }

    #[test]
    fn a_top_level_key_is_set_and_the_rest_kept() {
        let text =
            "# my settings\nport = 9000\nchat_model = \"/old.gguf\"\n\n[retrieval]\ntop_k = 4\n";
        let out = set_top_level_key(text, "chat_model", "/m/new.gguf");
        assert_eq!(
            out,
            "# my settings\nport = 9000\nchat_model = \"/m/new.gguf\"\n\n[retrieval]\ntop_k = 4\n"
        );
        let added = set_top_level_key(text, "embedding_model", "/m/e.gguf");
        assert!(
            added.contains(
                "chat_model = \"/old.gguf\"\nembedding_model = \"/m/e.gguf\"\n\n[retrieval]"
            ),
            "{added}"
        );
        let parsed: FileConfig = toml::from_str(&added).unwrap();
        assert_eq!(parsed.retrieval.top_k, 4);
        let quoted: FileConfig =
            toml::from_str(&set_top_level_key("", "chat_model", "a\"b")).unwrap();
        assert_eq!(quoted.chat_model, Some(PathBuf::from("a\"b")));
    }

    #[test]
    fn the_api_adds_only_folders_the_user_would_share() {
        let home = tempfile::tempdir().unwrap();
        let home = std::fs::canonicalize(home.path()).unwrap();
        let data = home.join(".local/share/docchat");
        let allowed = vec![home.clone()];
        assert!(check_shared_folder(&home.join("papers"), &allowed, &data).is_ok());
        for (folder, why) in [
            (home.join(".ssh"), "hidden"),
            (PathBuf::from("/etc"), "system folder"),
            (PathBuf::from("/"), "system folder"),
            (PathBuf::from("/opt/elsewhere"), "outside the folders"),
        ] {
            let e = check_shared_folder(&folder, &allowed, &data)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{}: {e}", folder.display());
        }
        let open_data = home.join("docchat-data");
        let e = check_shared_folder(&open_data.join("index"), &allowed, &open_data)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data folder"), "{e}");
    }

    #[test]
    fn watch_dirs_lines() {
        let text =
            "# my folders\n/data/papers = Research papers\n\nnotes   # inline\n/data/papers\n";
        let roots = parse_watch_dirs(text, Path::new("/base")).unwrap();
        assert_eq!(
            roots,
            vec![
                WatchRoot {
                    path: "/data/papers".into(),
                    collection: "Research papers".into()
                },
                WatchRoot {
                    path: "/base/notes".into(),
                    collection: "notes".into()
                },
            ]
        );
        assert!(parse_watch_dirs("= name", Path::new("/")).is_err());
        // Two folders of the same name, or one inside another, are refused.
        let same = parse_watch_dirs("/work/docs\n/home/docs\n", Path::new("/"));
        let e = format!("{:#}", same.unwrap_err());
        assert!(
            e.contains("line 2") && e.contains("\"docs\"") && e.contains("own name"),
            "{e}"
        );
        assert!(parse_watch_dirs("/work/docs\n/home/docs = home docs\n", Path::new("/")).is_ok());
        let nested = parse_watch_dirs("/a/b/c = inner\n/a = outer\n", Path::new("/"));
        let e = format!("{:#}", nested.unwrap_err());
        assert!(
            e.contains("/a/b/c (collection \"inner\") is inside /a"),
            "{e}"
        );
        // A sibling whose name starts the same is not inside.
        assert!(parse_watch_dirs("/a/b\n/a/bc\n", Path::new("/")).is_ok());
        let added = add_watch_line(
            "/a = outer\n",
            Path::new("/"),
            &WatchRoot {
                path: "/a/sub".into(),
                collection: "sub".into(),
            },
        );
        assert!(format!("{:#}", added.unwrap_err()).contains("indexed twice"));
    }

    #[test]
    fn parent_components_are_resolved() {
        let roots = parse_watch_dirs("../x/./y", Path::new("/a/b")).unwrap();
        assert_eq!(roots[0].path, PathBuf::from("/a/x/y"));
    }
}

/// Midnight UTC of a `YYYY-MM-DD` day, in ms since the epoch.
pub fn parse_day_ms(day: &str) -> Result<i64> {
    let parts: Vec<&str> = day.trim().split('-').collect();
    let parsed = match parts.as_slice() {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            (y.parse::<i64>(), m.parse::<u32>(), d.parse::<u32>())
        }
        _ => bail!("invalid day {day:?}: expected YYYY-MM-DD"),
    };
    let (Ok(y), Ok(m), Ok(d)) = parsed else {
        bail!("invalid day {day:?}: expected YYYY-MM-DD");
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month[m as usize - 1] {
        bail!("invalid day {day:?}: no such date");
    }
    // Days from the civil date (proleptic Gregorian), after H. Hinnant.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400_000)
}

#[cfg(test)]
mod day_tests {
    use super::parse_day_ms;

    #[test]
    fn days_parse_to_utc_midnight() {
        assert_eq!(parse_day_ms("1970-01-01").unwrap(), 0);
        assert_eq!(parse_day_ms("2000-03-01").unwrap(), 951_868_800_000);
        assert_eq!(parse_day_ms("2024-02-29").unwrap(), 1_709_164_800_000);
        assert!(parse_day_ms("2023-02-29").is_err());
        assert!(parse_day_ms("2024-13-01").is_err());
        assert!(parse_day_ms("yesterday").is_err());
    }
}
