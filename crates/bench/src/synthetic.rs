//! Synthetic text and vectors for the search benchmark: seeded, so every run
//! measures the same table.

use docchat_core::Location;
use docchat_store::{ChunkRecord, chunk_id};
use std::collections::HashSet;

/// Chunks per synthetic document.
pub const CHUNKS_PER_DOC: usize = 100;

/// Words in the synthetic vocabulary.
const VOCABULARY: usize = 20_000;

/// Topics the synthetic vectors cluster around.
const TOPICS: usize = 256;

/// A small, fast, seeded generator (SplitMix64): the data is the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        let v = self.unit();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    /// A word rank with Zipf-like frequencies (rank r has weight 1/r).
    pub fn zipf(&mut self, n: usize) -> usize {
        // Inverse of the continuous approximation H(r) ≈ ln(r): r = n^u.
        ((n as f64).powf(self.unit()) as usize).clamp(1, n) - 1
    }
}

/// `n` synthetic texts of `words` words each (reproducible from `seed`).
pub fn synthetic_texts(n: usize, words: usize, seed: u64) -> Vec<String> {
    let mut g = Synthetic::new(1, seed);
    (0..n).map(|_| g.text(words)).collect()
}

/// Synthetic corpus: pronounceable words, topic-clustered unit vectors.
pub struct Synthetic {
    rng: Rng,
    words: Vec<String>,
    topics: Vec<Vec<f32>>,
    dim: usize,
}

impl Synthetic {
    pub fn new(dim: usize, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let syllables = [
            "ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "ba", "de", "fu", "go", "hi",
            "ju", "pe", "qua", "ri", "so", "tu", "wen", "xo", "yal", "zor",
        ];
        let mut seen = HashSet::new();
        let mut words = Vec::with_capacity(VOCABULARY);
        while words.len() < VOCABULARY {
            let n = 2 + rng.below(3);
            let w: String = (0..n)
                .map(|_| syllables[rng.below(syllables.len())])
                .collect();
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let topics = (0..TOPICS)
            .map(|_| normalized((0..dim).map(|_| rng.normal()).collect()))
            .collect();
        Self {
            rng,
            words,
            topics,
            dim,
        }
    }

    pub fn text(&mut self, words: usize) -> String {
        let mut s = String::new();
        for i in 0..words {
            if i > 0 {
                s.push(if i % 17 == 0 { '.' } else { ' ' });
                if i % 17 == 0 {
                    s.push(' ');
                }
            }
            s.push_str(&self.words[self.rng.zipf(VOCABULARY)]);
        }
        s.push('.');
        s
    }

    pub fn vector(&mut self, noise: f32) -> Vec<f32> {
        let t = self.rng.below(TOPICS);
        let v = (0..self.dim)
            .map(|i| self.topics[t][i] + noise * self.rng.normal() / (self.dim as f32).sqrt())
            .collect();
        normalized(v)
    }

    pub fn chunk(&mut self, n: usize) -> ChunkRecord {
        let doc = format!("bench{:06}", n / CHUNKS_PER_DOC);
        let ordinal = (n % CHUNKS_PER_DOC) as u32;
        let text = self.text(150);
        ChunkRecord {
            id: chunk_id(&doc, ordinal),
            at: Location {
                document_id: doc.clone(),
                collection: "bench".into(),
                path: format!("{doc}.pdf"),
                page_start: ordinal / 4 + 1,
                page_end: ordinal / 4 + 1,
                byte_start: 0,
                byte_end: text.len() as u32,
                match_start: 0,
                match_end: text.len() as u32,
            },
            hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
            text,
            vector: self.vector(1.0),
        }
    }

    /// A query: a few mid-frequency words and a vector near one topic.
    pub fn query(&mut self) -> (String, Vec<f32>) {
        let words: Vec<&str> = (0..3)
            .map(|_| self.words[50 + self.rng.below(2_000)].as_str())
            .collect();
        (words.join(" "), self.vector(1.0))
    }
}

pub fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub fn synthetic_data_is_reproducible_and_well_formed() {
        let mut a = Synthetic::new(8, 7);
        let mut b = Synthetic::new(8, 7);
        let (ca, cb) = (a.chunk(123), b.chunk(123));
        assert_eq!(ca, cb);
        assert_eq!(ca.id, "bench000001-00023");
        assert_eq!(ca.at.byte_end as usize, ca.text.len());
        let norm: f32 = ca.vector.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        // Frequent words are frequent.
        let mut rng = Rng(1);
        let low = (0..10_000).filter(|_| rng.zipf(VOCABULARY) < 100).count();
        assert!(low > 4_000, "{low}");
    }
}
