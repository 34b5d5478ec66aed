//! The crates keep their arrows (README, "The crates"): core at the bottom; ingest,
//! llm and store on it and never on each other; service above them; server above
//! the service; the binary on top; the benchmarks beside it, never depended on.
//! No HTTP in the service, no argument parser in the service or the server, no
//! benchmark dependency in the product.

use crate::common::manifest_dir;

/// The names of the `[dependencies]` of `crates/NAME/Cargo.toml`.
fn dependencies(name: &str) -> Vec<String> {
    let path = manifest_dir().join("..").join(name).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
        } else if in_deps && !line.is_empty() && !line.starts_with('#') {
            let dep = line.split(['.', '=', ' ']).next().unwrap_or_default();
            out.push(dep.to_string());
        }
    }
    assert!(
        !out.is_empty(),
        "no dependencies read from {}",
        path.display()
    );
    out
}

fn docchat_crates(deps: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = deps
        .iter()
        .filter(|d| d.starts_with("docchat-"))
        .map(String::as_str)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn dependency_arrows_point_one_way() {
    let allowed: [(&str, &[&str]); 8] = [
        ("core", &[]),
        ("ingest", &["docchat-core"]),
        ("llm", &["docchat-core"]),
        ("store", &["docchat-core"]),
        (
            "service",
            &[
                "docchat-core",
                "docchat-ingest",
                "docchat-llm",
                "docchat-store",
            ],
        ),
        (
            "server",
            &[
                "docchat-core",
                "docchat-llm",
                "docchat-service",
                "docchat-store",
            ],
        ),
        (
            "cli",
            &[
                "docchat-core",
                "docchat-llm",
                "docchat-server",
                "docchat-service",
                "docchat-store",
            ],
        ),
        (
            "bench",
            &[
                "docchat-core",
                "docchat-ingest",
                "docchat-llm",
                "docchat-service",
                "docchat-store",
            ],
        ),
    ];
    for (name, may) in allowed {
        let deps = dependencies(name);
        for d in docchat_crates(&deps) {
            assert!(may.contains(&d), "crates/{name} depends on {d}");
        }
    }
    let service = dependencies("service");
    for d in ["axum", "clap", "docchat-server", "docchat-bench"] {
        assert!(
            !service.iter().any(|x| x == d),
            "the service depends on {d}"
        );
    }
    assert!(!dependencies("server").iter().any(|x| x == "clap"));
    let product = dependencies("cli");
    for d in ["lopdf", "docchat-bench"] {
        assert!(!product.iter().any(|x| x == d), "the binary depends on {d}");
    }
}
