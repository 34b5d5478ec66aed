//! `docchat bench embed`: embedding throughput of docchat's embedder against
//! llama.cpp's `llama-embedding`, same model, threads, batch sizes and chunks (the
//! real chunks docchat makes of the given documents), taking turns.

use crate::engine::{SpeedFigure, median};
use anyhow::{Context, Result, bail};
use docchat_core::Embedder;
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Settings both engines run with.
#[derive(Debug, Clone)]
pub struct EmbedSettings {
    /// Threads.
    pub threads: i32,
    /// Logical batch.
    pub batch: u32,
    /// Physical batch.
    pub ubatch: u32,
    /// Measured runs per engine.
    pub runs: usize,
}

/// One run of docchat's embedder: rates over the whole call (texts in, normalized
/// vectors out, tokenizing included) and over its batches alone (as llama-embedding
/// reports its own).
#[derive(Debug, Clone, Copy)]
pub struct DocchatRun {
    /// Tokens/s and chunks/s of the whole call.
    pub call: (f64, f64),
    /// Tokens/s and chunks/s of the batches alone, when the embedder times them.
    pub batches: Option<(f64, f64)>,
}

/// docchat's embedder on `texts`.
pub fn docchat_run(embedder: &dyn Embedder, texts: &[String]) -> Result<DocchatRun> {
    let tokens: usize = texts.iter().map(|t| embedder.count_tokens(t)).sum();
    let batch_us = embedder.batch_us();
    let started = Instant::now();
    let vectors = embedder.embed(texts)?;
    let secs = started.elapsed().as_secs_f64();
    let batch_secs = (embedder.batch_us() - batch_us) as f64 / 1e6;
    if vectors.len() != texts.len() {
        bail!("{} vectors for {} texts", vectors.len(), texts.len());
    }
    let rates = |secs: f64| (tokens as f64 / secs, texts.len() as f64 / secs);
    Ok(DocchatRun {
        call: rates(secs),
        batches: (batch_secs > 0.0).then(|| rates(batch_secs)),
    })
}

/// One run of `llama-embedding`, timed by its own log.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ToolRun {
    /// Tokens/s and chunks/s over the wall time of its batches.
    pub rates: (f64, f64),
    /// Wall time of the batches of the texts, s (from its log).
    pub wall_s: f64,
    /// What its own "prompt eval" timer says of all its batches, s.
    pub timer_s: f64,
}

/// `llama-embedding` on the same texts, one per line, then `sentinel` (a line that
/// makes a batch of its own): tokens/s and chunks/s over the wall time of the
/// texts' batches.
///
/// llama-embedding logs each batch, with a timestamp, just before it runs it: the
/// time from its first batch to the sentinel's is the wall time of every batch of
/// the texts, read-out and normalizing included, as docchat's own time is taken.
/// Its "prompt eval" timer is not used: a batch with more outputs than any before
/// makes llama.cpp grow its output buffer, which ends the timer's window before
/// that batch is computed, so the timer leaves such batches out while still
/// counting their tokens (a fresh process has several).
pub fn llama_embedding_run(
    tool: &Path,
    model: &Path,
    texts: &[String],
    sentinel: &str,
    s: &EmbedSettings,
) -> Result<ToolRun> {
    let mut file = tempfile::NamedTempFile::new()?;
    let mut lines: Vec<String> = texts
        .iter()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.push(sentinel.to_owned());
    std::io::Write::write_all(&mut file, lines.join("\n").as_bytes())?;
    let out = Command::new(tool)
        .arg("-m")
        .arg(model)
        .arg("-f")
        .arg(file.path())
        .args(["-t", &s.threads.to_string()])
        .args(["-b", &s.batch.to_string(), "-ub", &s.ubatch.to_string()])
        .args(["--embd-output-format", "array"])
        // The texts as they are: by default it turns `\n` (as in an Rd file's
        // `\name`) into a line break, which splits a chunk in two.
        .arg("--no-escape")
        // Its batches and its performance report are logged at this verbosity.
        .args(["-lv", "4", "--log-timestamps"])
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !out.status.success() {
        bail!(
            "llama-embedding failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = batch_log(&stderr);
    let Some((closing, batches)) = log.split_last() else {
        bail!("llama-embedding logged no batches");
    };
    let seqs: usize = batches.iter().map(|b| b.seqs).sum();
    if closing.seqs != 1 || seqs != texts.len() {
        bail!(
            "llama-embedding's batches hold {seqs} texts of {} and end with {} sequences, not the closing line alone",
            texts.len(),
            closing.seqs
        );
    }
    let wall_s = closing.at_s - batches.first().map_or(closing.at_s, |b| b.at_s);
    if wall_s <= 0.0 {
        bail!("llama-embedding's log shows no time for its batches");
    }
    let tokens: usize = batches.iter().map(|b| b.tokens).sum();
    let (timer_ms, _) =
        prompt_eval(&stderr).context("llama-embedding printed no prompt eval timing")?;
    Ok(ToolRun {
        rates: (tokens as f64 / wall_s, texts.len() as f64 / wall_s),
        wall_s,
        timer_s: timer_ms / 1e3,
    })
}

/// A line that llama-embedding puts in a batch of its own after any others: as
/// many one-token words as fill a batch of `batch` tokens with the model's [CLS]
/// and [SEP] (or fewer specials).
pub fn sentinel(embedder: &dyn Embedder, batch: usize) -> String {
    let target = batch.saturating_sub(2).max(1);
    let mut words = target;
    loop {
        let text = vec!["a"; words].join(" ");
        let n = embedder.count_tokens(&text);
        if n <= target || words == 1 {
            return text;
        }
        words -= (n - target).min(words - 1);
    }
}

/// Reads `prompt eval time = X ms / N tokens` from llama.cpp's performance report.
pub fn prompt_eval(stderr: &str) -> Option<(f64, f64)> {
    let line = stderr.lines().find(|l| l.contains("prompt eval time"))?;
    let rest = line.split_once('=')?.1;
    let (ms, rest) = rest.split_once("ms")?;
    let tokens = rest
        .trim_start_matches([' ', '/'])
        .split_whitespace()
        .next()?;
    Some((ms.trim().parse().ok()?, tokens.parse().ok()?))
}

/// One batch as llama-embedding logs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedBatch {
    /// When it started, s since the process started.
    pub at_s: f64,
    /// Its tokens.
    pub tokens: usize,
    /// Its sequences (texts).
    pub seqs: usize,
}

/// Reads `M.SS.mmm.uuu I batch_decode: n_tokens = N, n_seq = S` lines.
pub fn batch_log(stderr: &str) -> Vec<LoggedBatch> {
    stderr
        .lines()
        .filter_map(|line| {
            let (stamp, rest) = line.split_once(' ')?;
            let rest = rest.split_once("batch_decode: n_tokens = ")?.1;
            let (tokens, seqs) = rest.split_once(", n_seq = ")?;
            Some(LoggedBatch {
                at_s: log_time(stamp)?,
                tokens: tokens.trim().parse().ok()?,
                seqs: seqs.trim().parse().ok()?,
            })
        })
        .collect()
}

/// llama.cpp's log timestamp `minutes.seconds.milliseconds.microseconds`, in s.
fn log_time(stamp: &str) -> Option<f64> {
    let parts: Vec<u64> = stamp
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [m, s, ms, us] = parts[..] else {
        return None;
    };
    Some(m as f64 * 60.0 + s as f64 + ms as f64 / 1e3 + us as f64 / 1e6)
}

/// What `bench embed` found.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedBench {
    /// Rates of both engines, every run.
    pub figures: Vec<SpeedFigure>,
    /// Every llama-embedding run.
    pub baseline_runs: Vec<ToolRun>,
}

/// Both engines, taking turns, `s.runs` times (after a warm-up of docchat's).
pub fn run(
    embedder: &dyn Embedder,
    tool: Option<&Path>,
    model: &Path,
    texts: &[String],
    s: &EmbedSettings,
) -> Result<EmbedBench> {
    docchat_run(embedder, &texts[..texts.len().min(32)])?;
    let closing = tool.map(|_| sentinel(embedder, s.batch as usize));
    let mut ours = (Vec::new(), Vec::new());
    let mut batches = (Vec::new(), Vec::new());
    let mut theirs = (Vec::new(), Vec::new());
    let mut baseline_runs = Vec::new();
    for run in 1..=s.runs {
        eprintln!("run {run}/{}", s.runs);
        let r = docchat_run(embedder, texts)?;
        ours.0.push(r.call.0);
        ours.1.push(r.call.1);
        if let Some((t, c)) = r.batches {
            batches.0.push(t);
            batches.1.push(c);
        }
        if let (Some(tool), Some(closing)) = (tool, &closing) {
            let r = llama_embedding_run(tool, model, texts, closing, s)?;
            theirs.0.push(r.rates.0);
            theirs.1.push(r.rates.1);
            baseline_runs.push(r);
        }
    }
    let figure = |engine: &str, test: &str, runs: Vec<f64>| SpeedFigure {
        engine: engine.into(),
        test: test.into(),
        median: median(&runs),
        runs,
    };
    let mut out = vec![
        figure("docchat", "tokens/s", ours.0),
        figure("docchat", "chunks/s", ours.1),
    ];
    if !batches.0.is_empty() {
        out.push(figure("docchat-batches", "tokens/s", batches.0));
        out.push(figure("docchat-batches", "chunks/s", batches.1));
    }
    if tool.is_some() {
        out.push(figure("llama-embedding", "tokens/s", theirs.0));
        out.push(figure("llama-embedding", "chunks/s", theirs.1));
    }
    Ok(EmbedBench {
        figures: out,
        baseline_runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_perf_line_is_read() {
        let err = "llama_perf_context_print:        load time =      52.13 ms\n\
                   llama_perf_context_print: prompt eval time =    1234.50 ms /  4096 tokens (    0.30 ms per token,  3317.94 tokens per second)\n";
        assert_eq!(prompt_eval(err), Some((1234.5, 4096.0)));
        assert_eq!(prompt_eval("nothing"), None);
    }

    #[test]
    fn batches_are_read_from_the_log_with_their_times() {
        let err = "0.00.164.123 W init: embeddings required but some input tokens were not marked as outputs\n\
                   0.00.182.216 I batch_decode: n_tokens = 449, n_seq = 4\n\
                   0.00.338.390 I batch_decode: n_tokens = 446, n_seq = 2\n\
                   1.02.001.500 I batch_decode: n_tokens = 510, n_seq = 1\n\
                   0.10.772.041 I llama_perf_context_print: prompt eval time =    9741.33 ms / 45089 tokens\n";
        let log = batch_log(err);
        assert_eq!(log.len(), 3);
        assert_eq!((log[0].tokens, log[0].seqs), (449, 4));
        assert!((log[0].at_s - 0.182_216).abs() < 1e-9);
        assert!((log[1].at_s - 0.338_390).abs() < 1e-9);
        assert!((log[2].at_s - 62.001_5).abs() < 1e-9);
        assert_eq!(batch_log("batch_decode: n_tokens = 4, n_seq = 1"), vec![]);
        assert_eq!(log_time("0.00.182"), None);
    }
}
