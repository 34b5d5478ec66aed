//! A part of a document named in a question: "summarize chapter 3", "list the
//! figures of section 2.4", "what do pages 10-20 say". The part is found in the
//! document's own text, by its headings ("Chapter 3", "Capitolo 3", "3 Title",
//! "2.4 Title"), skipping tables of contents; pages are docchat's page numbers,
//! the ones its citations show.

/// A part of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Pages `first..=last`.
    Pages(u32, u32),
    /// A chapter or section by its number: `[3]`, `[2, 4]`.
    Numbered(Vec<u32>),
}

impl Part {
    /// "pages 10-20", "chapter 3", "section 2.4".
    pub fn words(&self) -> String {
        match self {
            Self::Pages(a, b) if a == b => format!("page {a}"),
            Self::Pages(a, b) => format!("pages {a}-{b}"),
            Self::Numbered(n) if n.len() == 1 => format!("chapter {}", n[0]),
            Self::Numbered(n) => format!("section {}", dotted(n)),
        }
    }
}

fn dotted(n: &[u32]) -> String {
    n.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

const CHAPTER_WORDS: &[&str] = &[
    "chapter",
    "chap.",
    "capitolo",
    "cap.",
    "chapitre",
    "kapitel",
    "capítulo",
];
const SECTION_WORDS: &[&str] = &["section", "sezione", "sect.", "sez.", "§"];
const PAGE_WORDS: &[&str] = &["pages", "page", "pagine", "pagina", "pp.", "p.", "pag."];

/// The part of a document `question` names, if it names one.
pub fn part_of(question: &str) -> Option<Part> {
    let lower = question.to_lowercase().replace(['–', '—'], "-");
    let words: Vec<&str> = lower
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| matches!(c, ',' | '?' | '!' | ';' | ':' | '(' | ')' | '"'))
        })
        .collect();
    for (i, w) in words.iter().enumerate() {
        let next = |k: usize| words.get(i + k).copied().unwrap_or("");
        if CHAPTER_WORDS.contains(w) || SECTION_WORDS.contains(w) {
            if let Some(n) = number(next(1)) {
                return Some(Part::Numbered(n));
            }
        } else if let Some(rest) = w.strip_prefix('§')
            && let Some(n) = number(rest)
        {
            return Some(Part::Numbered(n));
        } else if PAGE_WORDS.contains(w) {
            let a = next(1);
            if let Some((x, y)) = a.split_once('-')
                && let (Ok(x), Ok(y)) = (x.parse::<u32>(), y.trim_end_matches('.').parse::<u32>())
            {
                return (x >= 1 && y >= x).then_some(Part::Pages(x, y));
            }
            let Ok(x) = a.parse::<u32>() else { continue };
            if matches!(next(2), "to" | "a" | "through" | "-" | "al" | "alla")
                && let Ok(y) = next(3).trim_end_matches('.').parse::<u32>()
            {
                return (x >= 1 && y >= x).then_some(Part::Pages(x, y));
            }
            return (x >= 1).then_some(Part::Pages(x, x));
        }
    }
    None
}

/// "3", "2.4", "2.4.", "IV" → the numbers.
fn number(word: &str) -> Option<Vec<u32>> {
    let w = word.trim_end_matches('.');
    if w.is_empty() {
        return None;
    }
    if let Some(n) = roman(w) {
        return Some(vec![n]);
    }
    let n: Option<Vec<u32>> = w.split('.').map(|p| p.parse().ok()).collect();
    n.filter(|n| !n.is_empty() && n.len() <= 4)
}

fn roman(w: &str) -> Option<u32> {
    const R: &[&str] = &[
        "i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii", "xiv",
        "xv", "xvi", "xvii", "xviii", "xix", "xx",
    ];
    R.iter()
        .position(|r| r.eq_ignore_ascii_case(w))
        .map(|i| i as u32 + 1)
}

/// Where a part lies in a document's text: from a piece and a byte of its text,
/// to (not including) a piece and a byte, or to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: (usize, usize),
    pub end: Option<(usize, usize)>,
}

/// A heading line: its number, and whether a word says it ("Chapter 3").
fn heading(line: &str) -> Option<(Vec<u32>, bool)> {
    let t = line.trim();
    if t.len() > 80 || leaders(t) {
        return None;
    }
    let lower = t.to_lowercase();
    for w in CHAPTER_WORDS {
        if let Some(rest) = lower.strip_prefix(w)
            && rest.starts_with(' ')
        {
            let first = rest.trim_start().split([' ', ':']).next().unwrap_or("");
            return number(first).filter(|n| n.len() == 1).map(|n| (n, true));
        }
    }
    // "3 Title", "2.4 Title", "2.4. Title": a number, then a short title that
    // begins with a capital and is not a sentence nor a table of contents' line
    // (nor, for a chapter, one word in capitals: a table's row, "2 LISTSXP").
    let (num, title) = t.split_once(char::is_whitespace)?;
    let n = number(num.strip_suffix('.').unwrap_or(num))
        .filter(|_| num.starts_with(|c: char| c.is_ascii_digit()))?;
    let title = title.trim();
    let letter = title.chars().find(|c| c.is_alphanumeric())?;
    let words = title.split_whitespace().count();
    let last = title.split_whitespace().last().unwrap_or("");
    let ok = letter.is_uppercase()
        && title.len() <= 60
        && !title.ends_with(['.', ',', ';', ':'])
        && !last.chars().all(|c| c.is_ascii_digit())
        && (n.len() > 1 || words >= 2 || title.chars().any(char::is_lowercase));
    ok.then_some((n, false))
}

/// A table of contents' line: dot leaders.
fn leaders(line: &str) -> bool {
    line.contains(". . .") || line.contains("....")
}

/// Finds `part` in a document given as pieces of text with their pages, in order.
pub fn locate(part: &Part, pieces: &[(u32, &str)]) -> Option<Span> {
    match part {
        Part::Pages(a, b) => {
            let start = pieces.iter().position(|(p, _)| p >= a)?;
            if pieces[start].0 > *b {
                return None;
            }
            let end = pieces.iter().position(|(p, _)| p > b).map(|i| (i, 0));
            Some(Span {
                start: (start, 0),
                end,
            })
        }
        Part::Numbered(want) => {
            let all = headings(pieces);
            // A heading that says "Chapter N" wins; a numbered one ("N Title") is
            // taken where there is none, or where it opens the chapter a page or
            // two before its first running head.
            let opens = |e: &Heading, number: &[u32]| {
                all.iter().find(|n| {
                    !n.explicit && n.number == number && n.at <= e.at && n.page + 2 >= e.page
                })
            };
            let start = match all.iter().find(|h| h.explicit && h.number == *want) {
                Some(e) => opens(e, want).unwrap_or(e),
                None => all.iter().find(|h| !h.explicit && h.number == *want)?,
            };
            // Numbered headings after the start, written as it is ("3 Title" or
            // "3. Title").
            let after = |h: &&Heading| {
                h.at > start.at && (h.explicit || start.explicit || h.dot == start.dot)
            };
            // The next chapter: where a "Chapter M" (M > N) heading says it is,
            // from the numbered heading that opens it a page or two before; or the
            // heading numbered N + 1, whichever comes first.
            let by_word = all
                .iter()
                .filter(after)
                .find(|h| h.explicit && h.number[0] > want[0])
                .map(|e| opens(e, &e.number).filter(|n| n.at > start.at).unwrap_or(e));
            let by_number = all
                .iter()
                .filter(after)
                .find(|h| !h.explicit && h.number == [want[0] + 1]);
            let chapter_end = match (by_word, by_number) {
                (Some(w), Some(n)) => Some(if n.at < w.at { n } else { w }),
                (w, n) => w.or(n),
            };
            // The next section of the same level, before the next chapter.
            let section_end = (want.len() > 1)
                .then(|| {
                    all.iter().filter(after).find(|h| {
                        !h.explicit
                            && h.number.len() == want.len()
                            && h.number[..want.len() - 1] == want[..want.len() - 1]
                            && h.number > *want
                    })
                })
                .flatten()
                .filter(|s| chapter_end.is_none_or(|c| s.at < c.at));
            let end = section_end.or(chapter_end);
            Some(Span {
                start: start.at,
                end: end.map(|h| h.at),
            })
        }
    }
}

/// A heading found in the text.
struct Heading {
    at: (usize, usize),
    page: u32,
    number: Vec<u32>,
    explicit: bool,
    /// Written "3. Title" rather than "3 Title".
    dot: bool,
}

/// The headings of `pieces`, in order, outside tables of contents (pages with
/// three lines of dot leaders or more) and outside numbered tables and lists
/// (a line numbered N beside one numbered N±1).
fn headings(pieces: &[(u32, &str)]) -> Vec<Heading> {
    let mut per_page: std::collections::BTreeMap<u32, usize> = Default::default();
    for (page, text) in pieces {
        *per_page.entry(*page).or_default() += text.lines().filter(|l| leaders(l)).count();
    }
    let mut out = Vec::new();
    for (i, (page, text)) in pieces.iter().enumerate() {
        if per_page.get(page).is_some_and(|n| *n >= 3) {
            continue;
        }
        let lines: Vec<(usize, &str)> = text
            .split_inclusive('\n')
            .scan(0, |at, l| {
                let here = *at;
                *at += l.len();
                Some((here, l))
            })
            .filter(|(_, l)| !l.trim().is_empty())
            .collect();
        let lead = |l: &str| -> Option<Vec<u32>> {
            let w = l.split_whitespace().next()?;
            w.starts_with(|c: char| c.is_ascii_digit())
                .then(|| number(w))
                .flatten()
        };
        for (k, (at, line)) in lines.iter().enumerate() {
            let Some((number, explicit)) = heading(line) else {
                continue;
            };
            if !explicit {
                let step = |other: Option<&(usize, &str)>, d: i64| {
                    other.and_then(|(_, l)| lead(l)).is_some_and(|o| {
                        o.len() == number.len()
                            && o[..o.len() - 1] == number[..number.len() - 1]
                            && o[o.len() - 1] as i64 == number[number.len() - 1] as i64 + d
                    })
                };
                // A sentence that goes on in the next line is no heading.
                let goes_on = lines
                    .get(k + 1)
                    .and_then(|(_, l)| l.trim().chars().next())
                    .is_some_and(char::is_lowercase);
                if goes_on
                    || step(k.checked_sub(1).and_then(|k| lines.get(k)), -1)
                    || step(lines.get(k + 1), 1)
                {
                    continue;
                }
            }
            let dot = !explicit
                && line
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w.ends_with('.'));
            out.push(Heading {
                at: (i, *at),
                page: *page,
                number,
                explicit,
                dot,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_named_in_questions() {
        let n = |v: &[u32]| Some(Part::Numbered(v.to_vec()));
        assert_eq!(part_of("Summarize chapter 2"), n(&[2]));
        assert_eq!(part_of("summarize Chapter IV, please"), n(&[4]));
        assert_eq!(part_of("Riassumi il capitolo 3"), n(&[3]));
        assert_eq!(part_of("list the figures of section 2.4."), n(&[2, 4]));
        assert_eq!(part_of("what does §1.5 say"), n(&[1, 5]));
        assert_eq!(part_of("summarize pages 10-20"), Some(Part::Pages(10, 20)));
        assert_eq!(part_of("summarize pages 10–20"), Some(Part::Pages(10, 20)));
        assert_eq!(part_of("riassumi le pagine 3 a 9"), Some(Part::Pages(3, 9)));
        assert_eq!(part_of("what is on page 7?"), Some(Part::Pages(7, 7)));
        assert_eq!(part_of("pages 9-3"), None);
        assert_eq!(part_of("summarize this report"), None);
        assert_eq!(part_of("list every chapter title"), None);
        assert_eq!(Part::Numbered(vec![2, 4]).words(), "section 2.4");
    }

    #[test]
    fn chapters_are_found_past_the_contents_and_tables() {
        let contents = "Table of Contents\n1 Introduction . . . . . 1\n1.1 Scope . . . . 1\n\
                        2 Data Structures . . . . 4\n3 Final Words . . . . 9\n";
        let pieces = [
            (1, contents),
            (2, "1 Introduction\nThis manual describes things.\n"),
            (
                3,
                "The codes are:\n1 SYMSXP symbols\n2 LISTSXP pairlists\n3 CLOSXP closures\n\
                 2 The next step is long enough.\n3 Items that wrap\nare no headings\n",
            ),
            (
                4,
                "Chapter 1: Introduction 3\nmore text\n2 Data Structures\nSEXPs are...\n",
            ),
            (
                5,
                "Chapter 2: Data Structures 5\n2.1 Nodes\nA node.\n2.2 Vectors\n",
            ),
            (6, "3 Final Words\nThe end.\n"),
        ];
        let ch2 = locate(&Part::Numbered(vec![2]), &pieces).unwrap();
        assert_eq!(
            ch2.start,
            (3, "Chapter 1: Introduction 3\nmore text\n".len())
        );
        assert_eq!(ch2.end, Some((5, 0)));
        let s21 = locate(&Part::Numbered(vec![2, 1]), &pieces).unwrap();
        assert_eq!(s21.start, (4, "Chapter 2: Data Structures 5\n".len()));
        assert_eq!(
            s21.end,
            Some((
                4,
                "Chapter 2: Data Structures 5\n2.1 Nodes\nA node.\n".len()
            ))
        );
        let ch3 = locate(&Part::Numbered(vec![3]), &pieces).unwrap();
        assert_eq!(
            ch3,
            Span {
                start: (5, 0),
                end: None
            }
        );
        assert_eq!(locate(&Part::Numbered(vec![7]), &pieces), None);
        assert_eq!(
            locate(&Part::Pages(2, 3), &pieces),
            Some(Span {
                start: (1, 0),
                end: Some((3, 0))
            })
        );
        assert_eq!(locate(&Part::Pages(9, 12), &pieces), None);
    }

    #[test]
    fn written_chapter_headings() {
        let pieces = [
            (1, "CHAPTER I\nThe Beginning\nIt was.\n"),
            (2, "more\nCHAPTER II\nThe Middle\n"),
            (3, "Capitolo 3 - Fine\n"),
        ];
        let ch1 = locate(&Part::Numbered(vec![1]), &pieces).unwrap();
        assert_eq!(
            ch1,
            Span {
                start: (0, 0),
                end: Some((1, 5))
            }
        );
        let ch2 = locate(&Part::Numbered(vec![2]), &pieces).unwrap();
        assert_eq!(
            ch2,
            Span {
                start: (1, 5),
                end: Some((2, 0))
            }
        );
    }
}
