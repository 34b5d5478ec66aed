//! `docchat bench start`: how soon a server is ready. A cold start (a fresh data
//! folder: the models load, the server answers), then a folder of many small files
//! is indexed, the server is stopped and started again over the unchanged folder:
//! the restart must find every file unchanged without embedding anything.

use crate::harness::{Served, indexed_all, start_server, status, vm_kb, wait_indexed};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct StartReport {
    /// Files in the watched folder.
    pub files: usize,
    /// Cold start: from spawning the server to its first status answer, models
    /// loaded, s.
    pub cold_ready_s: f64,
    /// Peak RSS of the idle server after the cold start, MB.
    pub cold_rss_mb: f64,
    /// Indexing the folder the first time, s.
    pub first_index_s: f64,
    /// Restart: from spawning the server to its first status answer, s.
    pub restart_ready_s: f64,
    /// Restart: from spawning the server until every file is checked, s.
    pub restart_reconciled_s: f64,
    /// Chunks embedded by the restarted server (must be 0).
    pub restart_embedded: u64,
    /// Documents the restarted server lists as indexed.
    pub restart_indexed: u64,
    /// Peak RSS of the restarted server (which indexed nothing) after answering a
    /// few questions over the folder, MB.
    pub serving_rss_mb: f64,
    /// The model files, MB.
    pub model_files_mb: f64,
}

/// Writes `n` small text files (about 150 words each) in folders of 100.
fn write_files(dir: &Path, n: usize) -> Result<()> {
    for (i, text) in crate::synthetic::synthetic_texts(n, 150, 7)
        .into_iter()
        .enumerate()
    {
        let sub = dir.join(format!("part{:02}", i / 100));
        std::fs::create_dir_all(&sub)?;
        std::fs::write(sub.join(format!("note{i:05}.txt")), text)?;
    }
    Ok(())
}

/// Starts a server and waits for its first status answer: (server, seconds).
fn started(
    data: &Path,
    watch: &Path,
    models: &docchat_service::models::ModelPaths,
) -> Result<(Served, f64)> {
    let t = Instant::now();
    let server = start_server(data, watch, 2, models)?;
    while status(&server.addr).is_none() {
        if t.elapsed() > Duration::from_secs(120) {
            bail!("the server did not answer within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((server, t.elapsed().as_secs_f64()))
}

/// Stops a server the way a user does (SIGTERM), and waits for it to exit.
fn stop(mut server: Served) -> Result<()> {
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .context("cannot run kill")?;
    let t = Instant::now();
    while server.child.try_wait()?.is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            bail!("the server did not stop within a minute of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Runs the benchmark over `files` files.
pub fn run(files: usize, models: &docchat_service::models::ModelPaths) -> Result<StartReport> {
    let scratch = crate::harness::Scratch::new("docchat-start-", "notes")?;
    let (folder, watch, data) = (&scratch.folder, &scratch.watch, &scratch.data);

    let (server, cold_ready_s) = started(data, watch, models)?;
    let cold_rss_mb = vm_kb(server.child.id(), "VmHWM:") / 1024.0;
    eprintln!("start: cold start {cold_ready_s:.2} s; writing {files} files");
    let t = Instant::now();
    write_files(folder, files)?;
    while status(&server.addr).is_some_and(|s| indexed_all(&s)) && t.elapsed().as_secs() < 30 {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Done when every file is listed and nothing is queued (the watcher may still
    // be delivering the last events when the queue first runs empty).
    let indexed = |s: &serde_json::Value| s["counts"]["indexed"].as_u64().unwrap_or(0);
    loop {
        if !wait_indexed(&server.addr, Duration::from_secs(3600)) {
            bail!("the files were not indexed within an hour");
        }
        let s = status(&server.addr).context("the server stopped answering")?;
        if indexed(&s) >= files as u64 {
            break;
        }
        if s["counts"]["failed"].as_u64().unwrap_or(0) > 0 {
            bail!("{} of {files} files were indexed; some failed", indexed(&s));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let first_index_s = t.elapsed().as_secs_f64();
    eprintln!("start: indexed in {first_index_s:.1} s; restarting");
    stop(server)?;

    let t = Instant::now();
    let (server, restart_ready_s) = started(data, watch, models)?;
    if !wait_indexed(&server.addr, Duration::from_secs(600)) {
        bail!("the restarted server did not finish checking the folder in 10 minutes");
    }
    let restart_reconciled_s = t.elapsed().as_secs_f64();
    let st = status(&server.addr).context("the restarted server stopped answering")?;
    for q in [
        "What do the notes say about kasora?",
        "Which notes mention ferry timetables?",
        "Summarize the first note.",
    ] {
        crate::http::ask(&server.addr, q, 64)?;
    }
    let serving_rss_mb = vm_kb(server.child.id(), "VmHWM:") / 1024.0;
    let model_files_mb = crate::harness::model_files_mb(models);
    let report = StartReport {
        files,
        cold_ready_s,
        cold_rss_mb,
        first_index_s,
        restart_ready_s,
        restart_reconciled_s,
        restart_embedded: st["stats"]["chunks_embedded"].as_u64().unwrap_or(0),
        restart_indexed: st["counts"]["indexed"].as_u64().unwrap_or(0),
        serving_rss_mb,
        model_files_mb,
    };
    stop(server)?;
    Ok(report)
}

/// The report as text.
pub fn table(r: &StartReport) -> String {
    format!(
        "cold start (models loaded, server answering)     {:>6.2} s   (idle peak RSS {:.0} MB)\n\
         first indexing of {} files                     {:>6.1} s\n\
         restart: server answering                        {:>6.2} s\n\
         restart: all {} files checked, none re-embedded  {:>6.2} s   ({} indexed, {} chunks embedded)\n\
         serving: peak RSS after 3 answers                {:>6.0} MB  (model files {:.0} MB)\n",
        r.cold_ready_s,
        r.cold_rss_mb,
        r.files,
        r.first_index_s,
        r.restart_ready_s,
        r.files,
        r.restart_reconciled_s,
        r.restart_indexed,
        r.restart_embedded,
        r.serving_rss_mb,
        r.model_files_mb
    )
}
