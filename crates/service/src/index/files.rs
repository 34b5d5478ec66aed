//! Files of a watched folder: relative paths, links that lead out, names that are
//! not documents, the walk of a folder.

use docchat_core::FileKind;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// `path` relative to `root`, with `/` separators (a root that is a file: its name).
pub(super) fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    } else {
        parts.join("/")
    }
}

/// Whether `path`, links resolved, lies inside the watched folder (or file) `root`.
/// A link that leads out of its folder is not a document of that folder: indexing it
/// or serving it would hand out a file the user never chose to share.
pub fn inside_root(root: &Path, path: &Path) -> bool {
    match (std::fs::canonicalize(root), std::fs::canonicalize(path)) {
        (Ok(root), Ok(path)) => path.starts_with(root),
        _ => false,
    }
}

/// Hidden files and folders, office lock files and partial downloads are not
/// documents. `path` is relative to its watched folder.
pub fn is_ignored(path: &Path) -> bool {
    path.components().any(|c| {
        let name = c.as_os_str().to_string_lossy();
        name.starts_with('.') && name != "." && name != ".."
    }) || path.file_name().is_some_and(|n| {
        let n = n.to_string_lossy().to_lowercase();
        n.starts_with("~$")
            || n.ends_with('~')
            || [".part", ".tmp", ".crdownload", ".download", ".swp"]
                .iter()
                .any(|s| n.ends_with(s))
    })
}

/// Adds the supported files under `dir` to `out`, following symlinks without
/// looping. Returns the folders that exist but cannot be read, with the reason.
pub fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> Vec<(PathBuf, String)> {
    let mut unreadable = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(canonical) = std::fs::canonicalize(&d) else {
            continue;
        };
        if !seen.insert(canonical) {
            continue;
        }
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(path = %d.display(), error = %e, "cannot read folder");
                unreadable.push((d, e.to_string()));
                continue;
            }
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if is_ignored(p.strip_prefix(dir).unwrap_or(&p)) {
                continue;
            }
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() && !inside_root(dir, &p) => {
                    tracing::warn!(path = %p.display(), "not followed: a link to a folder outside the watched folder");
                }
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) if m.is_file() && FileKind::from_path(&p).is_some() => out.push(p),
                _ => {}
            }
        }
    }
    unreadable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_names() {
        assert!(is_ignored(Path::new("a/.hidden/x.pdf")));
        assert!(is_ignored(Path::new("~$report.docx")));
        assert!(is_ignored(Path::new("x.pdf.part")));
        assert!(is_ignored(Path::new("notes.txt~")));
        assert!(!is_ignored(Path::new("reports/q1.pdf")));
    }

    #[test]
    fn relative_paths_use_slashes() {
        assert_eq!(
            relative(Path::new("/r"), Path::new("/r/a/b.pdf")),
            "a/b.pdf"
        );
        assert_eq!(
            relative(Path::new("/r/b.pdf"), Path::new("/r/b.pdf")),
            "b.pdf"
        );
    }

    #[test]
    fn walk_skips_hidden_and_follows_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/.git")).unwrap();
        std::fs::write(root.join("sub/a.pdf"), b"x").unwrap();
        std::fs::write(root.join("sub/.git/b.md"), b"x").unwrap();
        std::fs::write(root.join("c.exe"), b"x").unwrap();
        std::os::unix::fs::symlink(root, root.join("sub/loop")).unwrap();
        let mut files = Vec::new();
        walk_files(root, &mut files);
        assert_eq!(files, vec![root.join("sub/a.pdf")]);
    }
}
