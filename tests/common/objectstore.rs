//! A real S3-compatible object store for the tests: SeaweedFS (`weed server -s3`,
//! installed by `scripts/setup.sh`) on loopback ports, its data in a temporary
//! folder; stopped when dropped, and stoppable and restartable mid-test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket every test store lives in.
pub const BUCKET: &str = "docchat-test";

/// A running SeaweedFS.
pub struct ObjectStore {
    child: Option<Child>,
    dir: tempfile::TempDir,
    base_port: u16,
}

/// The `weed` binary of the tests' venv.
fn weed() -> PathBuf {
    let cache = std::env::var_os("DOCCHAT_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/docchat")))
        .expect("HOME or DOCCHAT_CACHE");
    let w = cache.join("venv/bin/weed");
    assert!(
        w.exists(),
        "{} is missing: run scripts/setup.sh (it installs SeaweedFS)",
        w.display()
    );
    w
}

/// A base port with the eight ports from it free on loopback.
fn free_ports() -> u16 {
    let seed = std::process::id() as u16;
    for i in 0..200u16 {
        let base = 20_000 + (seed.wrapping_mul(7).wrapping_add(i * 97) % 30_000);
        if (0..8).all(|k| TcpListener::bind(("127.0.0.1", base + k)).is_ok()) {
            return base;
        }
    }
    panic!("no eight free loopback ports");
}

impl ObjectStore {
    /// Starts SeaweedFS and makes [`BUCKET`].
    pub fn start() -> Self {
        let mut s = Self {
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
            base_port: free_ports(),
        };
        s.run();
        let res = super::http::request("PUT", &format!("{}/{BUCKET}", s.endpoint()), None);
        assert_eq!(res.status, 200, "cannot make the bucket: {}", res.text());
        s
    }

    fn run(&mut self) {
        let b = self.base_port;
        let port = |k: u16| (b + k).to_string();
        let child = Command::new(weed())
            .args(["server", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-dir={}", self.dir.path().display()))
            .args(["-master.port", &port(0), "-master.port.grpc", &port(1)])
            .args(["-volume.port", &port(2), "-volume.port.grpc", &port(3)])
            .args(["-filer.port", &port(4), "-filer.port.grpc", &port(5)])
            .args(["-s3.port", &port(6), "-s3.port.grpc", &port(7)])
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.max=8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("weed starts");
        self.child = Some(child);
        // Ready when the S3 gateway lists the buckets.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = try_get(&self.endpoint()) {
                if status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not answer on {} within 90 s",
                self.endpoint()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `http://127.0.0.1:PORT` of the S3 gateway.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.base_port + 6)
    }

    /// `s3://BUCKET/prefix`.
    pub fn uri(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// The environment a docchat needs to reach it (the usual `AWS_*` variables).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "docchat-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "docchat-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Stops it (as a crash or an outage would), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for ObjectStore {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The status of a GET, or `None` when nothing answers.
fn try_get(url: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let mut s =
        std::net::TcpStream::connect_timeout(&rest.parse().ok()?, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {rest}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
