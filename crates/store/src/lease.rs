//! The writer's lease: one object beside the tables (`writer-lease.json`) naming the
//! only docchat that may write to a store, until a time it keeps pushing forward.
//! A second writer is refused while the lease runs; a writer that crashed stops
//! renewing it, and the next one takes it over when it has run out (at once when
//! the holder was a process of this machine that is gone).
//!
//! Creating and taking over are conditional writes (`If-None-Match` /
//! `If-Match`), and every write is read back: a store that ignores the conditions
//! still never leaves two writers each believing it holds the lease.

use crate::error::{Error, Result};
use crate::location::Location;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Name of the lease object.
pub const LEASE_FILE: &str = "writer-lease.json";

/// Who holds a lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// Host name of the writer.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// Unique to one start of one process.
    pub token: String,
    /// When it took the lease (Unix milliseconds).
    pub since_ms: i64,
    /// When the lease runs out unless renewed (Unix milliseconds).
    pub expires_ms: i64,
}

impl LeaseHolder {
    /// Whether the lease has run out at `now_ms`, or its holder is a process of
    /// this machine that no longer runs.
    fn is_over(&self, now_ms: i64, host: &str) -> bool {
        now_ms >= self.expires_ms || (self.host == host && !process_runs(self.pid))
    }

    /// The holder in words, for a refusal.
    pub fn describe(&self) -> String {
        format!(
            "{} (process {}), writing since {}, its lease renewed until {}",
            self.host,
            self.pid,
            when(self.since_ms),
            when(self.expires_ms)
        )
    }
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// This machine's name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether process `pid` of this machine runs (and is a docchat: a reused pid of
/// another program does not hold a lease up). Where `/proc` is missing, every
/// process is taken to run, and only the expiry frees a lease.
fn process_runs(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("docchat"))
}

/// A held lease. Renew it well within its time to live ([`Lease::keep`] does);
/// release it on a clean stop.
#[derive(Debug)]
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    uri: String,
    me: std::sync::Mutex<LeaseHolder>,
    ttl: Duration,
    /// The version last written (entity tag), for the next conditional write.
    e_tag: std::sync::Mutex<Option<String>>,
    renewals: AtomicU64,
}

impl Lease {
    /// Takes the lease of the store at `location` for `ttl`, or says who holds it.
    pub async fn acquire(location: &Location, ttl: Duration) -> Result<Arc<Self>> {
        let (store, prefix) = location.object_store()?;
        let path = prefix.clone().join(LEASE_FILE);
        let host = host_name();
        let pid = std::process::id();
        let since = now_ms();
        let me = LeaseHolder {
            token: format!("{host}-{pid}-{since}-{:x}", since.wrapping_mul(0x9e37_79b9)),
            host,
            pid,
            since_ms: since,
            expires_ms: since + ttl_ms(ttl),
        };
        let lease = Self {
            store,
            path,
            uri: location.uri().to_string(),
            me: std::sync::Mutex::new(me.clone()),
            ttl,
            e_tag: std::sync::Mutex::new(None),
            renewals: AtomicU64::new(0),
        };
        let mode = match lease.read().await? {
            None => PutMode::Create,
            Some((holder, e_tag)) => {
                if !holder.is_over(now_ms(), &me.host) {
                    return Err(lease.taken(&holder));
                }
                tracing::warn!(holder = %holder.describe(), "taking over the lease of a writer that stopped");
                PutMode::Update(UpdateVersion {
                    e_tag,
                    version: None,
                })
            }
        };
        lease.write(&me, mode).await?;
        Ok(Arc::new(lease))
    }

    /// Who holds the lease of the store at `location`, if anyone does.
    pub async fn holder(location: &Location) -> Result<Option<LeaseHolder>> {
        let (store, prefix) = location.object_store()?;
        let path = prefix.join(LEASE_FILE);
        Ok(read_lease(store.as_ref(), &path, location.uri())
            .await?
            .map(|(h, _)| h))
    }

    /// This process as the holder.
    pub fn me(&self) -> LeaseHolder {
        self.me.lock().expect("poisoned").clone()
    }

    /// Times the lease was renewed.
    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::Relaxed)
    }

    /// Pushes the expiry one time to live forward. Fails when another process
    /// holds the lease now (this one had let it run out).
    pub async fn renew(&self) -> Result<()> {
        let mut me = self.me();
        match self.read().await? {
            Some((holder, _)) if holder.token == me.token => {}
            Some((holder, _)) => return Err(self.taken(&holder)),
            None => {
                return Err(Error::Taken(format!(
                    "the writer's lease of {} was removed by another process",
                    self.uri
                )));
            }
        }
        me.expires_ms = now_ms() + ttl_ms(self.ttl);
        let e_tag = self.e_tag.lock().expect("poisoned").clone();
        let mode = match e_tag {
            Some(t) => PutMode::Update(UpdateVersion {
                e_tag: Some(t),
                version: None,
            }),
            None => PutMode::Overwrite,
        };
        self.write(&me, mode).await?;
        *self.me.lock().expect("poisoned") = me;
        self.renewals.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Renews the lease every third of its time to live until another process
    /// holds it: then `lost` is called with the reason (the caller must stop
    /// writing). A store that cannot be reached is tried again at the same pace:
    /// nothing can be written to it meanwhile either, and when it answers again
    /// the lease is either still this process's (renewed) or another's (lost).
    pub fn keep(self: &Arc<Self>, lost: impl FnOnce(String) + Send + 'static) {
        let lease = Arc::clone(self);
        tokio::spawn(async move {
            let every = lease.ttl / 3;
            loop {
                tokio::time::sleep(every).await;
                match lease.renew().await {
                    Ok(()) => {}
                    Err(Error::Taken(why)) => return lost(why),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the writer's lease; trying again");
                    }
                }
            }
        });
    }

    /// Gives the lease up (on a clean stop): the next writer need not wait.
    pub async fn release(&self) -> Result<()> {
        if let Some((holder, _)) = self.read().await?
            && holder.token == self.me().token
        {
            self.store
                .delete(&self.path)
                .await
                .map_err(|e| self.failed(e))?;
        }
        Ok(())
    }

    async fn read(&self) -> Result<Option<(LeaseHolder, Option<String>)>> {
        read_lease(self.store.as_ref(), &self.path, &self.uri).await
    }

    /// Writes `me` with `mode`, then reads it back: the lease is held only when
    /// what is stored is this process's.
    async fn write(&self, me: &LeaseHolder, mode: PutMode) -> Result<()> {
        let body = serde_json::to_vec_pretty(me).expect("serializable");
        let put_with = |mode: PutMode| {
            self.store.put_opts(
                &self.path,
                PutPayload::from(body.clone()),
                PutOptions {
                    mode,
                    ..PutOptions::default()
                },
            )
        };
        let update = matches!(mode, PutMode::Update(_));
        let mut put = put_with(mode).await;
        if update && matches!(put, Err(object_store::Error::NotImplemented { .. })) {
            // A store without conditional updates (a local folder): the holder was
            // checked just before, and what is written is read back below.
            put = put_with(PutMode::Overwrite).await;
        }
        match put {
            Ok(r) => *self.e_tag.lock().expect("poisoned") = r.e_tag,
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                // Another process wrote it first.
                return match self.read().await? {
                    Some((holder, _)) => Err(self.taken(&holder)),
                    None => Err(Error::Taken(format!(
                        "another docchat is taking the writer's lease of {} at this moment",
                        self.uri
                    ))),
                };
            }
            Err(e) => return Err(self.failed(e)),
        }
        match self.read().await? {
            Some((holder, e_tag)) if holder.token == me.token => {
                if e_tag.is_some() {
                    *self.e_tag.lock().expect("poisoned") = e_tag;
                }
                Ok(())
            }
            Some((holder, _)) => Err(self.taken(&holder)),
            None => Err(Error::Taken(format!(
                "the writer's lease of {} vanished as it was written",
                self.uri
            ))),
        }
    }

    fn taken(&self, holder: &LeaseHolder) -> Error {
        Error::Taken(format!(
            "another docchat writes to the store {}: {}. Serve questions from the same \
             store with --role reader, or stop that writer first (a writer that crashed \
             frees the store when its lease runs out).",
            self.uri,
            holder.describe()
        ))
    }

    fn failed(&self, e: object_store::Error) -> Error {
        Error::Location {
            uri: self.uri.clone(),
            detail: format!("the writer's lease: {}", with_causes(&e)),
        }
    }
}

/// An error with its causes ("…: connection refused"), which say more than the
/// outer message.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

async fn read_lease(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    uri: &str,
) -> Result<Option<(LeaseHolder, Option<String>)>> {
    let got = match store.get(path).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => {
            return Err(Error::Location {
                uri: uri.to_string(),
                detail: format!("cannot read the writer's lease: {}", with_causes(&e)),
            });
        }
    };
    let e_tag = got.meta.e_tag.clone();
    let bytes = got.bytes().await.map_err(|e| Error::Location {
        uri: uri.to_string(),
        detail: format!("cannot read the writer's lease: {e}"),
    })?;
    match serde_json::from_slice::<LeaseHolder>(&bytes) {
        Ok(h) => Ok(Some((h, e_tag))),
        // A lease left half-written (or by something else) holds nothing up.
        Err(_) => Ok(Some((
            LeaseHolder {
                host: String::new(),
                pid: 0,
                token: String::new(),
                since_ms: 0,
                expires_ms: 0,
            },
            e_tag,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_writer_is_refused_until_the_first_releases() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::folder(dir.path());
        let first = Lease::acquire(&loc, Duration::from_secs(30)).await.unwrap();
        let e = Lease::acquire(&loc, Duration::from_secs(30))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("another docchat writes to the store"), "{e}");
        assert!(
            e.contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        assert!(e.contains("--role reader"), "{e}");
        first.renew().await.unwrap();
        assert_eq!(first.renewals(), 1);
        assert_eq!(Lease::holder(&loc).await.unwrap(), Some(first.me()));
        first.release().await.unwrap();
        assert_eq!(Lease::holder(&loc).await.unwrap(), None);
        let second = Lease::acquire(&loc, Duration::from_secs(30)).await.unwrap();
        assert_ne!(second.me().token, first.me().token);
    }

    #[tokio::test]
    async fn a_lease_run_out_or_of_a_gone_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::folder(dir.path());
        let write = |h: &LeaseHolder| {
            std::fs::write(dir.path().join(LEASE_FILE), serde_json::to_vec(h).unwrap()).unwrap();
        };
        // A writer of another machine whose lease ran out.
        let old = LeaseHolder {
            host: "elsewhere".into(),
            pid: 1,
            token: "t-old".into(),
            since_ms: 0,
            expires_ms: now_ms() - 1,
        };
        write(&old);
        let taken = Lease::acquire(&loc, Duration::from_secs(30)).await.unwrap();
        assert_eq!(
            Lease::holder(&loc).await.unwrap().unwrap().token,
            taken.me().token
        );
        drop(taken);
        // A writer of another machine whose lease runs: refused.
        write(&LeaseHolder {
            expires_ms: now_ms() + 60_000,
            ..old.clone()
        });
        assert!(Lease::acquire(&loc, Duration::from_secs(30)).await.is_err());
        // A process of this machine that is gone (no such pid runs docchat).
        write(&LeaseHolder {
            host: host_name(),
            pid: u32::MAX - 7,
            expires_ms: now_ms() + 60_000,
            ..old
        });
        Lease::acquire(&loc, Duration::from_secs(30)).await.unwrap();
    }

    #[tokio::test]
    async fn a_writer_that_lost_its_lease_cannot_renew_it() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::folder(dir.path());
        let first = Lease::acquire(&loc, Duration::from_secs(30)).await.unwrap();
        // Another process took it over (as after this one stalled past its expiry).
        std::fs::write(
            dir.path().join(LEASE_FILE),
            serde_json::to_vec(&LeaseHolder {
                host: "elsewhere".into(),
                pid: 1,
                token: "other".into(),
                since_ms: now_ms(),
                expires_ms: now_ms() + 60_000,
            })
            .unwrap(),
        )
        .unwrap();
        let e = first.renew().await.unwrap_err().to_string();
        assert!(e.contains("elsewhere (process 1)"), "{e}");
    }
}
