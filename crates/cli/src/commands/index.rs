//! `docchat index`: files or folders indexed once, with a progress bar.

use anyhow::Result;
use clap::Args;
use docchat_service::Settings;
use docchat_service::config::{self};
use docchat_service::disk::check_writable;
use docchat_service::index::Indexer;
use docchat_store::DocState;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Files or folders to index
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Collection name [default: each folder's name]
    #[arg(long)]
    collection: Option<String>,
}

pub async fn index(s: Settings, a: IndexArgs) -> Result<ExitCode> {
    let roots = config::roots_of(&a.paths, a.collection.as_deref())?;
    check_writable(&s.data_dir)?;
    let embedder = s.embedder().await?;
    let (store, lease) = s.writable_store(&embedder).await?;
    let indexer = Indexer::new(store.clone(), embedder, roots.clone(), s.limits()?);
    tokio::spawn(Arc::clone(&indexer).run());
    indexer.reconcile().await?;
    let total = indexer.queue_len() as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} files  {elapsed_precise}, eta {eta}  {msg}",
        )
        .expect("valid template"),
    );
    {
        let wait = indexer.wait_idle();
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                () = tokio::time::sleep(Duration::from_millis(250)) => {
                    bar.set_position(total.saturating_sub(indexer.queue_len() as u64));
                    bar.set_message(format!(
                        "{} chunks embedded",
                        indexer.stats.chunks_embedded.load(std::sync::atomic::Ordering::SeqCst)
                    ));
                }
            }
        }
    }
    bar.finish_and_clear();
    let collections: Vec<&str> = roots.iter().map(|r| r.collection.as_str()).collect();
    let docs: Vec<_> = store
        .documents()
        .await?
        .into_iter()
        .filter(|d| collections.contains(&d.collection.as_str()))
        .collect();
    let indexed = docs.iter().filter(|d| d.state == DocState::Indexed).count();
    let failed: Vec<_> = docs
        .iter()
        .filter(|d| d.state == DocState::Failed)
        .collect();
    println!(
        "{indexed} indexed, {} failed, {} chunks embedded in this run",
        failed.len(),
        indexer
            .stats
            .chunks_embedded
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    for d in failed {
        println!(
            "  failed  {}/{}: {}",
            d.collection,
            d.path,
            d.error.as_deref().unwrap_or("")
        );
    }
    if let Some(lease) = lease {
        lease.release().await?;
    }
    Ok(ExitCode::SUCCESS)
}
