//! `docchat bench engine`: prompt processing and generation speed of docchat's engine
//! against llama.cpp's own `llama-bench`, same model, threads and batch sizes, in one
//! run. docchat is measured through its real generation path (tokenizing, the KV
//! cache bookkeeping, sampling, detokenizing and streaming), llama-bench through
//! its bare decode loop.

use anyhow::{Context, Result, bail};
use docchat_core::{GenerationParams, Generator};
use serde::Serialize;
use std::path::Path;
use std::process::Command;

/// One figure: a test (`pp512`, `tg128`) on one engine, tokens per second.
#[derive(Debug, Clone, Serialize)]
pub struct SpeedFigure {
    /// `docchat` or `llama-bench`.
    pub engine: String,
    /// `ppN` (prompt processing of N tokens) or `tgN` (generation of N tokens).
    pub test: String,
    /// Median of the runs.
    pub median: f64,
    /// Every run, tokens per second.
    pub runs: Vec<f64>,
}

/// The median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// A text of exactly `tokens` tokens for `generator` (without the special tokens it
/// adds), different for each `run`.
fn prompt_of(generator: &dyn Generator, tokens: usize, run: usize) -> Result<String> {
    const WORDS: [&str; 16] = [
        "river", "lantern", "copper", "meadow", "signal", "harbor", "violet", "engine", "quartz",
        "ledger", "willow", "summit", "cobalt", "orchard", "falcon", "marble",
    ];
    let mut words = vec![format!("Text {run}:")];
    let mut i = run;
    while generator.count_tokens(&words.join(" ")) < tokens {
        words.push(WORDS[i % WORDS.len()].to_string());
        i = i.wrapping_mul(7).wrapping_add(3);
    }
    while generator.count_tokens(&words.join(" ")) > tokens && words.len() > 1 {
        words.pop();
    }
    let text = words.join(" ");
    if generator.count_tokens(&text) != tokens {
        bail!("cannot build a prompt of exactly {tokens} tokens");
    }
    Ok(text)
}

/// docchat's engine, as llama-bench measures: prompt processing of a `n_prompt`-token
/// prompt (to its first token), and generation of `n_gen` tokens after a prompt of a
/// few tokens (greedy, end of text ignored); `runs` measured runs each, after one
/// warm-up.
pub fn docchat_speed(
    generator: &dyn Generator,
    n_prompt: usize,
    n_gen: u32,
    runs: usize,
) -> Result<Vec<SpeedFigure>> {
    let params = |max_tokens| GenerationParams {
        max_tokens,
        temperature: 0.0,
        repeat_penalty: 1.0,
        ignore_eos: true,
        ..GenerationParams::default()
    };
    let (mut pp, mut tg) = (Vec::new(), Vec::new());
    // The special tokens (BOS) the model adds to a prompt, found by the warm-up:
    // the measured prompts are `n_prompt` tokens with them, as llama-bench's are.
    let mut specials = 0;
    for run in 0..=runs {
        let text = prompt_of(generator, n_prompt.saturating_sub(specials).max(1), run)?;
        // The path the server takes: pieces handed to a sink on the model's thread.
        // The whole prompt is processed, as llama-bench's: a cached BOS would leave
        // 511 tokens, a batch llama.cpp processes more slowly per token than 512.
        let whole = GenerationParams {
            cache_prompt: false,
            ..params(1)
        };
        let stats = generator.generate_send(&text, &whole, Box::new(|_| true))?;
        let short = format!("Run {run}:");
        let generated = generator.generate_send(&short, &params(n_gen), Box::new(|_| true))?;
        if generated.tokens < n_gen {
            bail!("generated {} tokens of {n_gen}", generated.tokens);
        }
        if run == 0 {
            specials = (stats.prompt_tokens as usize).saturating_sub(generator.count_tokens(&text));
            continue;
        }
        if stats.prompt_tokens as usize != n_prompt {
            bail!("a prompt of {} tokens, not {n_prompt}", stats.prompt_tokens);
        }
        // The tokens processed over the time to the first token.
        let processed = stats.prompt_tokens - stats.cached_tokens;
        pp.push(f64::from(processed) / (stats.ttft_ms.max(1) as f64 / 1e3));
        tg.push(generated.tokens_per_s);
    }
    Ok(vec![
        SpeedFigure {
            engine: "docchat".into(),
            test: format!("pp{n_prompt}"),
            median: median(&pp),
            runs: pp,
        },
        SpeedFigure {
            engine: "docchat".into(),
            test: format!("tg{n_gen}"),
            median: median(&tg),
            runs: tg,
        },
    ])
}

/// The settings both engines run with.
#[derive(Debug, Clone)]
pub struct SpeedSettings {
    /// Threads.
    pub threads: i32,
    /// Logical batch.
    pub batch: u32,
    /// Physical batch.
    pub ubatch: u32,
    /// Prompt tokens.
    pub n_prompt: usize,
    /// Generated tokens.
    pub n_gen: u32,
    /// Measured runs.
    pub runs: usize,
}

/// llama.cpp's `llama-bench` on `model` with `s`; its per-run samples when it reports
/// them, else its average.
pub fn llama_bench(tool: &Path, model: &Path, s: &SpeedSettings) -> Result<Vec<SpeedFigure>> {
    let out = Command::new(tool)
        .arg("-m")
        .arg(model)
        .args(["-p", &s.n_prompt.to_string(), "-n", &s.n_gen.to_string()])
        .args(["-t", &s.threads.to_string()])
        .args(["-b", &s.batch.to_string(), "-ub", &s.ubatch.to_string()])
        .args(["-r", &s.runs.to_string(), "-o", "json"])
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !out.status.success() {
        bail!(
            "llama-bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_llama_bench(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `llama-bench -o json`.
pub fn parse_llama_bench(json: &str) -> Result<Vec<SpeedFigure>> {
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(json).context("llama-bench printed no JSON")?;
    let mut out = Vec::new();
    for r in rows {
        let n_prompt = r["n_prompt"].as_u64().unwrap_or(0);
        let n_gen = r["n_gen"].as_u64().unwrap_or(0);
        let test = if n_gen > 0 {
            format!("tg{n_gen}")
        } else {
            format!("pp{n_prompt}")
        };
        let runs: Vec<f64> = r["samples_ts"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default();
        let avg = r["avg_ts"]
            .as_f64()
            .context("llama-bench row without avg_ts")?;
        // Without its samples, the average stands for the run.
        let runs = if runs.is_empty() { vec![avg] } else { runs };
        out.push(SpeedFigure {
            engine: "llama-bench".into(),
            test,
            median: median(&runs),
            runs,
        });
    }
    Ok(out)
}

/// Adds `more` to `into`, run by run: figures of the same engine and test merge.
pub fn merge(into: &mut Vec<SpeedFigure>, more: Vec<SpeedFigure>) {
    for f in more {
        match into
            .iter_mut()
            .find(|g| g.engine == f.engine && g.test == f.test)
        {
            Some(g) => {
                g.runs.extend(f.runs);
                g.median = median(&g.runs);
            }
            None => into.push(f),
        }
    }
}

/// The figures side by side, with docchat's ratio to the other engine of each test.
pub fn table(figures: &[SpeedFigure]) -> String {
    let mut out = String::from("test     engine          median t/s   runs\n");
    for f in figures {
        out.push_str(&format!(
            "{:<8} {:<14} {:>12.1}   {}\n",
            f.test,
            f.engine,
            f.median,
            f.runs
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    let mut tests: Vec<&str> = Vec::new();
    for f in figures {
        if !tests.contains(&f.test.as_str()) {
            tests.push(&f.test);
        }
    }
    // Each of docchat's figures (the engine's name starts with "docchat") over the
    // baseline's.
    for t in tests {
        let Some(base) = figures
            .iter()
            .find(|f| f.test == t && !f.engine.starts_with("docchat"))
        else {
            continue;
        };
        for d in figures
            .iter()
            .filter(|f| f.test == t && f.engine.starts_with("docchat"))
        {
            out.push_str(&format!(
                "{t}: {} / {} = {:.3}",
                d.engine,
                base.engine,
                d.median / base.median.max(f64::MIN_POSITIVE)
            ));
            // Runs that took turns pair up: the median of their ratios weighs each
            // pair's own conditions (a slow minute slows both of a pair).
            if d.runs.len() == base.runs.len() && !d.runs.is_empty() {
                let ratios: Vec<f64> = d
                    .runs
                    .iter()
                    .zip(&base.runs)
                    .map(|(a, b)| a / b.max(f64::MIN_POSITIVE))
                    .collect();
                out.push_str(&format!(" (median of paired runs {:.3})", median(&ratios)));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_bench_json_is_read() {
        let json = r#"[{"n_prompt": 512, "n_gen": 0, "avg_ts": 1000.5, "samples_ts": [990.0, 1000.0, 1010.0]},
                      {"n_prompt": 0, "n_gen": 128, "avg_ts": 50.0, "samples_ts": []}]"#;
        let f = parse_llama_bench(json).unwrap();
        assert_eq!(f[0].test, "pp512");
        assert!((f[0].median - 1000.0).abs() < 1e-9);
        assert_eq!(f[1].test, "tg128");
        assert!((f[1].median - 50.0).abs() < 1e-9);
        assert!(table(&f).contains("pp512"));
        let ours = SpeedFigure {
            engine: "docchat".into(),
            test: "pp512".into(),
            median: 900.0,
            runs: vec![900.0, 800.0, 1010.0],
        };
        let t = table(&[ours, f[0].clone()]);
        assert!(
            t.contains("pp512: docchat / llama-bench = 0.900 (median of paired runs 0.909)"),
            "{t}"
        );
        let mut all = f.clone();
        merge(&mut all, f);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].runs.len(), 6);
        assert_eq!(all[1].runs, vec![50.0, 50.0]);
    }

    #[test]
    fn medians() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-12);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-12);
        assert!(median(&[]).abs() < 1e-12);
    }
}
