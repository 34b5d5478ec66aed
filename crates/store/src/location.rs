//! Where a store lives: a folder on this machine, or a prefix on an S3-compatible
//! object store (`s3://bucket/prefix`), reached with the usual `AWS_*` environment
//! variables and the options of the configuration (`store_options`).

use crate::error::{Error, Result};
use lancedb::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A store's place: a local folder or an object-store prefix, with the options of
/// its object store (endpoint, region, credentials …; never shown).
#[derive(Clone, PartialEq, Eq)]
pub struct Location {
    uri: String,
    options: BTreeMap<String, String>,
}

/// Options of a remote store unless configured: few retries, a short connect
/// timeout.
const REMOTE_DEFAULTS: &[(&str, &str)] = &[
    ("client_max_retries", "2"),
    ("client_retry_timeout", "20"),
    ("connect_timeout", "5s"),
];

/// Option names whose values are secret.
const SECRET_OPTIONS: &[&str] = &["secret", "token", "password", "key_id", "credential"];

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self
            .options
            .iter()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                if SECRET_OPTIONS.iter().any(|s| lower.contains(s)) {
                    format!("{k}=…")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        write!(f, "Location({} [{}])", self.uri, shown.join(", "))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uri)
    }
}

impl Location {
    /// A folder on this machine.
    pub fn folder(dir: &Path) -> Self {
        Self {
            uri: dir.to_string_lossy().into_owned(),
            options: BTreeMap::new(),
        }
    }

    /// `s3://bucket/prefix`, `file:///path` or a plain path. Other schemes are
    /// refused with the reason; so is a URI carrying credentials (they belong in
    /// the environment or in `store_options`, not in a string that gets shown).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bad = |detail: String| Error::Location {
            uri: text.split('@').next_back().unwrap_or(text).to_string(),
            detail,
        };
        if text.is_empty() {
            return Err(bad("empty".into()));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Self::folder(Path::new(text)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => Ok(Self::folder(Path::new(rest))),
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(bad("no bucket: write s3://BUCKET/PREFIX".into()));
                }
                if bucket.contains('@') || bucket.contains(':') {
                    return Err(bad(
                        "credentials do not go in the address: set AWS_ACCESS_KEY_ID and \
                         AWS_SECRET_ACCESS_KEY, or store_options"
                            .into(),
                    ));
                }
                let prefix = prefix.trim_matches('/');
                let uri = if prefix.is_empty() {
                    format!("s3://{bucket}")
                } else {
                    format!("s3://{bucket}/{prefix}")
                };
                Ok(Self {
                    uri,
                    options: BTreeMap::new(),
                })
            }
            other => Err(bad(format!(
                "docchat keeps its index in a folder or on S3-compatible storage \
                 (s3://bucket/prefix); {other}:// is not supported"
            ))),
        }
    }

    /// The same place with these object-store options added (`aws_endpoint`,
    /// `aws_region`, `aws_access_key_id`, `allow_http` …: the names of LanceDB's
    /// storage options).
    pub fn with_options(mut self, options: impl IntoIterator<Item = (String, String)>) -> Self {
        self.options.extend(options);
        self
    }

    /// Whether the store is on an object store rather than in a folder.
    pub fn is_remote(&self) -> bool {
        self.uri.starts_with("s3://")
    }

    /// The folder of a local store.
    pub fn local_dir(&self) -> Option<PathBuf> {
        (!self.is_remote()).then(|| PathBuf::from(&self.uri))
    }

    /// The place `name` inside this one.
    pub fn join(&self, name: &str) -> Self {
        let uri = match self.local_dir() {
            Some(dir) => dir.join(name).to_string_lossy().into_owned(),
            None => format!("{}/{}", self.uri.trim_end_matches('/'), name),
        };
        Self {
            uri,
            options: self.options.clone(),
        }
    }

    /// The address (never the options).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// A LanceDB connection to the database here. A local folder is created when
    /// missing. `refresh`: how stale a read may be before the tables are checked for
    /// versions other processes wrote (`None`: never, for the only writer).
    pub(crate) async fn connect(&self, refresh: Option<Duration>) -> Result<Connection> {
        if let Some(dir) = self.local_dir() {
            std::fs::create_dir_all(&dir).map_err(|e| Error::Location {
                uri: self.uri.clone(),
                detail: format!("cannot create the folder: {e}"),
            })?;
        }
        let mut options = self.options.clone();
        if self.is_remote() {
            // An object store that does not answer fails a request within
            // seconds, not after minutes of retries: docchat says so, and tries
            // again with the next request.
            for (k, v) in REMOTE_DEFAULTS {
                options
                    .entry((*k).to_string())
                    .or_insert_with(|| (*v).to_string());
            }
        }
        let mut builder = lancedb::connect(&self.uri).storage_options(options);
        if let Some(r) = refresh {
            builder = builder.read_consistency_interval(r);
        }
        builder.execute().await.map_err(|e| self.unreachable(e))
    }

    /// The error of a store that cannot be reached, with the address.
    pub(crate) fn unreachable(&self, e: impl std::fmt::Display) -> Error {
        Error::Location {
            uri: self.uri.clone(),
            detail: format!("cannot be reached: {e}"),
        }
    }

    /// The object store and the path of this place in it (for the small files
    /// docchat keeps beside its tables: the writer's lease).
    pub fn object_store(
        &self,
    ) -> Result<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)> {
        let bad = |e: &dyn std::fmt::Display| Error::Location {
            uri: self.uri.clone(),
            detail: e.to_string(),
        };
        if let Some(dir) = self.local_dir() {
            std::fs::create_dir_all(&dir).map_err(|e| bad(&e))?;
            let fs =
                object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(|e| bad(&e))?;
            return Ok((Arc::new(fs), object_store::path::Path::default()));
        }
        let rest = self.uri.trim_start_matches("s3://");
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let mut builder =
            object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket.to_string());
        for (k, v) in &self.options {
            // LanceDB's storage options take the same names as these keys, and a
            // few more of its own (which do not concern the lease).
            if let Ok(key) = k.to_ascii_lowercase().parse() {
                builder = builder.with_config(key, v.clone());
            }
        }
        // Plain http (a store on this machine or the local network) as LanceDB
        // allows it: `AWS_ALLOW_HTTP` or the `allow_http` option.
        let allow_http = std::env::var("AWS_ALLOW_HTTP")
            .ok()
            .into_iter()
            .chain(
                self.options
                    .iter()
                    .filter(|(k, _)| {
                        let k = k.to_ascii_lowercase();
                        k == "allow_http" || k == "aws_allow_http"
                    })
                    .map(|(_, v)| v.clone()),
            )
            .any(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
        let s3 = builder
            .with_retry(object_store::RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
                ..object_store::RetryConfig::default()
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(20)),
            )
            .build()
            .map_err(|e| bad(&e))?;
        Ok((Arc::new(s3), object_store::path::Path::from(prefix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_folders_and_s3_prefixes() {
        let l = Location::parse("/var/lib/docchat").unwrap();
        assert!(!l.is_remote());
        assert_eq!(l.local_dir(), Some(PathBuf::from("/var/lib/docchat")));
        assert_eq!(l.join("index").uri(), "/var/lib/docchat/index");
        let f = Location::parse("file:///srv/dc").unwrap();
        assert_eq!(f.local_dir(), Some(PathBuf::from("/srv/dc")));
        let s = Location::parse("s3://team-docs/docchat/").unwrap();
        assert!(s.is_remote());
        assert_eq!(s.uri(), "s3://team-docs/docchat");
        assert_eq!(s.join("chats").uri(), "s3://team-docs/docchat/chats");
        assert_eq!(
            Location::parse("s3://b").unwrap().join("x").uri(),
            "s3://b/x"
        );
    }

    #[test]
    fn refuses_other_schemes_and_credentials_in_the_address() {
        let e = Location::parse("gs://bucket/x").unwrap_err().to_string();
        assert!(e.contains("gs:// is not supported"), "{e}");
        let e = Location::parse("s3://AKIA:hunter2xyz@bucket/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("credentials do not go in the address"), "{e}");
        assert!(!e.contains("hunter2xyz") && !e.contains("AKIA"), "{e}");
        assert!(Location::parse("s3:///x").is_err());
    }

    #[test]
    fn never_shows_secret_options() {
        let l = Location::parse("s3://b/p").unwrap().with_options([
            ("aws_secret_access_key".to_string(), "hunter2".to_string()),
            ("aws_access_key_id".to_string(), "AKIAXYZ".to_string()),
            (
                "aws_endpoint".to_string(),
                "http://127.0.0.1:8333".to_string(),
            ),
        ]);
        let shown = format!("{l:?} {l}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("AKIAXYZ"),
            "{shown}"
        );
        assert!(
            shown.contains("aws_endpoint=http://127.0.0.1:8333"),
            "{shown}"
        );
    }
}
