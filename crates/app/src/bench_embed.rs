//! `docchat bench embed`: embedding throughput of docchat's embedder against
//! llama.cpp's `llama-embedding`, same model, threads, batch sizes and chunks (the
//! real chunks docchat makes of the given documents), taking turns.

use crate::bench_engine::{SpeedFigure, median};
use anyhow::{Context, Result, bail};
use docchat_core::Embedder;
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

/// `llama-embedding` on the same texts, one per line: (tokens/s, chunks/s) of one
/// run, from its own timing of the batches (model loading excluded, as for docchat).
pub fn llama_embedding_run(
    tool: &Path,
    model: &Path,
    texts: &[String],
    s: &EmbedSettings,
) -> Result<(f64, f64)> {
    let mut file = tempfile::NamedTempFile::new()?;
    let lines: Vec<String> = texts
        .iter()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    std::io::Write::write_all(&mut file, lines.join("\n").as_bytes())?;
    let out = Command::new(tool)
        .arg("-m")
        .arg(model)
        .arg("-f")
        .arg(file.path())
        .args(["-t", &s.threads.to_string()])
        .args(["-b", &s.batch.to_string(), "-ub", &s.ubatch.to_string()])
        .args(["--embd-output-format", "array"])
        // Its performance report is printed at this verbosity.
        .args(["-lv", "4"])
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !out.status.success() {
        bail!(
            "llama-embedding failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (ms, tokens) = prompt_eval(&String::from_utf8_lossy(&out.stderr))
        .context("llama-embedding printed no prompt eval timing")?;
    let secs = ms / 1e3;
    Ok((tokens / secs, texts.len() as f64 / secs))
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

/// Both engines, taking turns, `s.runs` times (after a warm-up of docchat's).
pub fn run(
    embedder: &dyn Embedder,
    tool: Option<&Path>,
    model: &Path,
    texts: &[String],
    s: &EmbedSettings,
) -> Result<Vec<SpeedFigure>> {
    docchat_run(embedder, &texts[..texts.len().min(32)])?;
    let mut ours = (Vec::new(), Vec::new());
    let mut batches = (Vec::new(), Vec::new());
    let mut theirs = (Vec::new(), Vec::new());
    for run in 1..=s.runs {
        eprintln!("run {run}/{}", s.runs);
        let r = docchat_run(embedder, texts)?;
        ours.0.push(r.call.0);
        ours.1.push(r.call.1);
        if let Some((t, c)) = r.batches {
            batches.0.push(t);
            batches.1.push(c);
        }
        if let Some(tool) = tool {
            let (t, c) = llama_embedding_run(tool, model, texts, s)?;
            theirs.0.push(t);
            theirs.1.push(c);
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
    Ok(out)
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
}
