//! Chunking that keeps boundaries stable under local edits: pages are split
//! separately (an edit on page 7 cannot move a boundary on page 8), and within a
//! page text-splitter cuts at the highest semantic level that fits (paragraphs,
//! then sentences, then words), sized in tokens of the embedding model.

use docchat_core::{ChunkDraft, Page, TokenCounter};
use text_splitter::{ChunkConfig, ChunkSizer, TextSplitter};

/// Chunk sizes, in tokens of the embedding model.
#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    /// A chunk grows at least to this many tokens when the text allows it.
    pub min_tokens: usize,
    /// A chunk never exceeds this many tokens.
    pub max_tokens: usize,
    /// Tokens shared by neighbouring chunks of a page.
    pub overlap_tokens: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            min_tokens: 200,
            max_tokens: 256,
            overlap_tokens: 32,
        }
    }
}

struct Tokens<'a>(&'a dyn TokenCounter);

impl ChunkSizer for Tokens<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0.count_tokens(chunk)
    }
}

/// Splits pages into chunks, each with its page and byte range and content hash.
/// Chunks without content (a page number alone, a rule) are dropped.
pub fn chunk_pages(
    pages: &[Page],
    counter: &dyn TokenCounter,
    opts: &ChunkOptions,
) -> Vec<ChunkDraft> {
    let max = opts.max_tokens.max(1);
    let min = opts.min_tokens.clamp(1, max);
    let overlap = opts.overlap_tokens.min(min.saturating_sub(1));
    let config = ChunkConfig::new(min..max)
        .with_sizer(Tokens(counter))
        .with_overlap(overlap)
        .expect("overlap is smaller than the chunk size")
        .with_trim(true);
    let splitter = TextSplitter::new(config);
    let mut chunks = Vec::new();
    for page in pages {
        for (offset, text) in splitter.chunk_indices(&page.text) {
            if !has_content(text) {
                continue;
            }
            chunks.push(ChunkDraft {
                text: text.to_string(),
                page_start: page.number,
                page_end: page.number,
                byte_start: offset as u32,
                byte_end: (offset + text.len()) as u32,
                hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
            });
        }
    }
    chunks
}

/// A letter, or a number of some length (a table of figures is content; a page
/// number alone is not).
fn has_content(text: &str) -> bool {
    text.chars().any(char::is_alphabetic) || text.chars().filter(char::is_ascii_digit).count() >= 4
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts whitespace-separated words: enough to test boundaries, not a model.
    struct Words;
    impl TokenCounter for Words {
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    fn page(n: u32, text: &str) -> Page {
        Page {
            number: n,
            text: text.into(),
        }
    }

    fn paragraphs(prefix: &str, n: usize) -> String {
        (0..n)
            .map(|i| format!("{prefix} paragraph {i} has a few words in it to fill space."))
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    #[test]
    fn chunks_keep_pages_and_byte_ranges() {
        let pages = vec![
            page(1, &paragraphs("alpha", 20)),
            page(2, &paragraphs("beta", 20)),
        ];
        let opts = ChunkOptions {
            min_tokens: 30,
            max_tokens: 40,
            overlap_tokens: 5,
        };
        let chunks = chunk_pages(&pages, &Words, &opts);
        assert!(chunks.len() >= 6);
        for c in &chunks {
            let p = &pages[(c.page_start - 1) as usize];
            assert_eq!(&p.text[c.byte_start as usize..c.byte_end as usize], c.text);
            assert!(Words.count_tokens(&c.text) <= 40);
            assert_eq!(c.page_start, c.page_end);
        }
        assert!(
            chunks
                .iter()
                .any(|c| c.page_start == 2 && c.text.contains("beta"))
        );
        assert!(
            chunks
                .iter()
                .all(|c| c.page_start == 1 || !c.text.contains("alpha"))
        );
    }

    #[test]
    fn an_edit_leaves_other_pages_chunks_unchanged() {
        let opts = ChunkOptions {
            min_tokens: 30,
            max_tokens: 40,
            overlap_tokens: 0,
        };
        let before = vec![
            page(1, &paragraphs("alpha", 20)),
            page(2, &paragraphs("beta", 20)),
        ];
        let mut edited = before.clone();
        edited[0]
            .text
            .insert_str(0, "A new opening sentence was inserted here. ");
        let a = chunk_pages(&before, &Words, &opts);
        let b = chunk_pages(&edited, &Words, &opts);
        let page2 = |cs: &[ChunkDraft]| {
            cs.iter()
                .filter(|c| c.page_start == 2)
                .map(|c| c.hash.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(page2(&a), page2(&b));
        let changed: Vec<_> = b
            .iter()
            .filter(|c| !a.iter().any(|x| x.hash == c.hash))
            .collect();
        assert!(!changed.is_empty());
        assert!(changed.iter().all(|c| c.page_start == 1));
    }

    #[test]
    fn chunks_without_words_are_dropped() {
        let chunks = chunk_pages(
            &[
                page(1, "  12  "),
                page(2, "----"),
                page(3, "1999 2024"),
                page(4, "x"),
            ],
            &Words,
            &ChunkOptions::default(),
        );
        let pages: Vec<u32> = chunks.iter().map(|c| c.page_start).collect();
        assert_eq!(pages, [3, 4]);
    }
}
