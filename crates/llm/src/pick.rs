//! Picking the next token without handing the whole vocabulary to the sampler.
//!
//! llama.cpp's `llama_sampler_sample` copies every logit into a candidate array
//! (262,144 entries of 12 bytes for Gemma 3) and runs the chain over all of them:
//! the repetition penalties look each candidate up in a hash map, `top_k`
//! partially sorts them. When the chain keeps at most `k` tokens anyway (greedy,
//! or `top_k` > 0), only a few candidates can ever be chosen: the `k` best logits
//! among the tokens the chain leaves alone, and the tokens whose logits it changes
//! (recent tokens under repetition penalties, banned end-of-generation tokens).
//! [`Picker`] hands the chain just those, so it picks exactly the token the full
//! array would give, at a fraction of the cost.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use docchat_core::GenerationParams;

/// A logit ordered by `f32::total_cmp`, for the heap of the best candidates.
#[derive(Clone, Copy, PartialEq)]
struct Score(f32, i32);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// The `m` highest logits (ties: lower token id first) plus the tokens of `extra`,
/// each once, as candidates with their raw logits.
pub fn top_candidates(logits: &[f32], m: usize, extra: &[i32]) -> Vec<LlamaTokenData> {
    let m = m.min(logits.len());
    let mut best: BinaryHeap<Reverse<Score>> = BinaryHeap::with_capacity(m + 1);
    if m > 0 {
        let mut floor = f32::NEG_INFINITY;
        let mut consider = |i: usize, x: f32, floor: &mut f32| {
            let s = Score(x, i as i32);
            if best.len() < m {
                best.push(Reverse(s));
            } else if s > best.peek().map_or(s, |r| r.0) {
                best.pop();
                best.push(Reverse(s));
            }
            if best.len() == m {
                *floor = best.peek().map_or(f32::NEG_INFINITY, |r| r.0.0);
            }
        };
        // Blocks of 16: the maximum of a block vectorizes, and almost every block
        // falls below the floor, so its logits are never looked at one by one.
        const BLOCK: usize = 16;
        let mut blocks = logits.chunks_exact(BLOCK);
        let mut filled = 0;
        for (b, block) in (&mut blocks).enumerate() {
            let top = block
                .iter()
                .fold(f32::NEG_INFINITY, |a, &x| if x > a { x } else { a });
            if filled < m || top >= floor {
                for (k, &x) in block.iter().enumerate() {
                    if filled < m || x >= floor {
                        filled += 1;
                        consider(b * BLOCK + k, x, &mut floor);
                    }
                }
            }
        }
        let start = logits.len() - blocks.remainder().len();
        for (k, &x) in blocks.remainder().iter().enumerate() {
            if filled < m || x >= floor {
                filled += 1;
                consider(start + k, x, &mut floor);
            }
        }
    }
    let mut ids: Vec<i32> = best.iter().map(|r| r.0.1).collect();
    ids.sort_unstable();
    let mut out: Vec<LlamaTokenData> = ids
        .iter()
        .map(|&id| LlamaTokenData::new(LlamaToken::new(id), logits[id as usize], 0.0))
        .collect();
    let mut added: Vec<i32> = Vec::new();
    for &id in extra {
        let Some(&logit) = usize::try_from(id).ok().and_then(|i| logits.get(i)) else {
            continue;
        };
        if ids.binary_search(&id).is_err() && !added.contains(&id) {
            added.push(id);
            out.push(LlamaTokenData::new(LlamaToken::new(id), logit, 0.0));
        }
    }
    out
}

/// The end-of-generation tokens of `model` (a scan of its whole vocabulary: done
/// once per model, not per request).
pub fn eog_tokens(model: &LlamaModel) -> Vec<i32> {
    let vocab = model.vocab();
    (0..model.n_vocab())
        .map(LlamaToken::new)
        .filter(|t| vocab.is_eog(*t))
        .map(|t| t.0)
        .collect()
}

/// The sampler chain of a request and what it needs to pick from a few candidates.
pub struct Picker {
    chain: LlamaSampler,
    /// How many tokens the chain keeps at most, when it keeps few: 1 for greedy,
    /// `top_k` otherwise. `None`: it needs the whole vocabulary.
    keep: Option<usize>,
    /// End-of-generation tokens the chain bans (`ignore_eos`).
    banned: Vec<i32>,
    /// How many recent tokens the repetition penalties look at (0: none).
    window: usize,
    recent: VecDeque<i32>,
    extra: Vec<i32>,
}

impl Picker {
    /// The chain for `p`: repetition penalties, the end-of-generation ban (of the
    /// model's `eog` tokens, when `p.ignore_eos`), then greedy (temperature 0) or
    /// top-k, top-p, min-p, temperature and a seeded draw.
    pub fn new(model: &LlamaModel, eog: &[i32], p: &GenerationParams) -> Self {
        let banned = if p.ignore_eos {
            eog.to_vec()
        } else {
            Vec::new()
        };
        Self::with_vocab(model.n_vocab(), banned, p)
    }

    /// [`Picker::new`] for a vocabulary of `n_vocab` tokens of which `banned` may
    /// never be picked.
    pub fn with_vocab(n_vocab: i32, banned: Vec<i32>, p: &GenerationParams) -> Self {
        let mut chain = vec![LlamaSampler::penalties(
            n_vocab,
            p.repeat_last_n,
            p.repeat_penalty,
            p.frequency_penalty,
            p.presence_penalty,
        )];
        if !banned.is_empty() {
            let bias: Vec<LlamaLogitBias> = banned
                .iter()
                .map(|&t| LlamaLogitBias::new(LlamaToken::new(t), f32::NEG_INFINITY))
                .collect();
            chain.push(LlamaSampler::logit_bias(n_vocab, &bias));
        }
        let keep = if p.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
            Some(1)
        } else {
            if p.top_k > 0 {
                chain.push(LlamaSampler::top_k(p.top_k));
            }
            chain.push(LlamaSampler::top_p(p.top_p, 1));
            chain.push(LlamaSampler::min_p(p.min_p, 1));
            chain.push(LlamaSampler::temp(p.temperature));
            chain.push(LlamaSampler::dist(p.seed));
            usize::try_from(p.top_k).ok().filter(|&k| k > 0)
        };
        // Mirrors llama.cpp's test for penalties that change nothing.
        let penalized = p.repeat_last_n != 0
            && !(p.repeat_penalty == 1.0
                && p.frequency_penalty == 0.0
                && p.presence_penalty == 0.0);
        let window = if penalized {
            usize::try_from(p.repeat_last_n).unwrap_or(0)
        } else {
            0
        };
        Self {
            chain: LlamaSampler::chain_simple(chain),
            keep,
            banned,
            window,
            recent: VecDeque::with_capacity(window),
            extra: Vec::new(),
        }
    }

    /// The next token from the logits of batch position `idx`.
    pub fn pick(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> Option<LlamaToken> {
        let token = if self.keep.is_some() {
            let picked = self.pick_from(ctx.get_logits_ith(idx))?;
            self.chain.accept(picked);
            picked
        } else {
            // The whole vocabulary: llama.cpp's own path (which accepts the token).
            self.chain.sample(ctx, idx)
        };
        self.remember(token);
        Some(token)
    }

    /// The chain's choice from `logits`, run over the candidates that can win;
    /// the token is not accepted.
    pub fn pick_from(&mut self, logits: &[f32]) -> Option<LlamaToken> {
        let Some(keep) = self.keep else {
            let all = (0..logits.len())
                .map(|i| LlamaTokenData::new(LlamaToken::new(i as i32), logits[i], 0.0));
            let mut array = LlamaTokenDataArray::from_iter(all, false);
            array.apply_sampler(&mut self.chain);
            return array.selected_token();
        };
        self.extra.clear();
        self.extra.extend_from_slice(&self.banned);
        self.extra.extend(self.recent.iter().copied());
        // The `keep` best among the tokens the chain leaves alone are among the
        // `keep + extra` best overall; the changed ones come in whatever their logit.
        let candidates = top_candidates(logits, keep + self.extra.len(), &self.extra);
        let mut array = LlamaTokenDataArray::new(candidates, false);
        array.apply_sampler(&mut self.chain);
        array.selected_token()
    }

    /// Accepts a token picked by [`Picker::pick_from`].
    #[cfg(test)]
    fn accept(&mut self, token: LlamaToken) {
        self.chain.accept(token);
        self.remember(token);
    }

    fn remember(&mut self, token: LlamaToken) {
        if self.window == 0 {
            return;
        }
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(token.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed-seed generator of logits shaped like a model's: most low, a few high.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn unit(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 24) as f32
        }
        fn logits(&mut self, n: usize) -> Vec<f32> {
            (0..n)
                .map(|_| {
                    let u = self.unit();
                    // A long tail and a few standouts.
                    if u > 0.999 {
                        8.0 + 10.0 * self.unit()
                    } else {
                        -5.0 + 10.0 * self.unit()
                    }
                })
                .collect()
        }
    }

    #[test]
    fn top_candidates_are_the_best_logits_and_the_extra_tokens_once() {
        let logits = vec![0.5, 3.0, -1.0, 3.0, 2.0, 9.0, 0.0];
        let c = top_candidates(&logits, 3, &[2, 5, 2, 99, -1]);
        let ids: Vec<i32> = c.iter().map(|d| d.id().0).collect();
        // 9.0 (5), 3.0 (1), 3.0 (3); then 2 once; 5 is already in; 99 and -1 do not exist.
        assert_eq!(ids, vec![1, 3, 5, 2]);
        assert_eq!(c[3].logit(), -1.0);
        assert!(top_candidates(&logits, 0, &[]).is_empty());
        assert_eq!(top_candidates(&logits, 50, &[]).len(), logits.len());
    }

    fn params(
        temperature: f32,
        top_k: i32,
        repeat_penalty: f32,
        ignore_eos: bool,
    ) -> GenerationParams {
        GenerationParams {
            temperature,
            top_k,
            repeat_penalty,
            repeat_last_n: 16,
            frequency_penalty: 0.1,
            presence_penalty: 0.0,
            ignore_eos,
            seed: 7,
            ..GenerationParams::default()
        }
    }

    /// The full vocabulary through llama.cpp's chain and the few candidates through
    /// a twin chain choose the same token at every step, penalties and bans included.
    #[test]
    fn picking_from_candidates_matches_the_whole_vocabulary() {
        let n_vocab = 50_000;
        let banned = vec![1, 106];
        for (case, p) in [
            params(0.0, 40, 1.0, false),
            params(0.0, 40, 1.3, true),
            params(0.8, 40, 1.15, false),
            params(1.5, 5, 1.15, true),
            params(0.7, 1, 0.9, false),
        ]
        .iter()
        .enumerate()
        {
            let ban = if p.ignore_eos {
                banned.clone()
            } else {
                Vec::new()
            };
            let mut fast = Picker::with_vocab(n_vocab, ban.clone(), p);
            let mut full = Picker::with_vocab(n_vocab, ban, p);
            full.keep = None;
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 + case as u64);
            let mut repeats = 0;
            for step in 0..60 {
                let mut logits = rng.logits(n_vocab as usize);
                // Make recent tokens and the banned ones strong rivals, so that the
                // penalties and the ban decide.
                for &t in full.recent.iter().take(3) {
                    logits[t as usize] = 30.0;
                }
                logits[1] = 40.0;
                let a = fast.pick_from(&logits).expect("a token");
                let b = full.pick_from(&logits).expect("a token");
                assert_eq!(a, b, "case {case}, step {step}");
                if p.ignore_eos {
                    assert!(!banned.contains(&a.0), "case {case}: a banned token");
                }
                if full.recent.contains(&a.0) {
                    repeats += 1;
                }
                fast.accept(a);
                full.accept(b);
            }
            assert!(repeats < 60, "case {case}: every token repeated");
        }
    }
}
