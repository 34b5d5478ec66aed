//! The command line: one-shot indexing, status with reasons, asking with `--json`.

use crate::common::{corpus, run};

#[test]
fn index_status_and_ask_from_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let folder = tmp.path().join("papers");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(
        corpus().join("pdf-wild/tracemonkey.pdf"),
        folder.join("tracemonkey.pdf"),
    )
    .unwrap();
    std::fs::copy(
        corpus().join("pdf-wild/issue9105_other.pdf"),
        folder.join("broken.pdf"),
    )
    .unwrap();

    let index = [std::ffi::OsStr::new("index"), folder.as_os_str()];
    let stdout = run(&data, &index);
    assert!(stdout.contains("1 indexed, 1 failed"), "{stdout}");
    assert!(
        stdout.contains("papers/broken.pdf:"),
        "failures are listed with a reason: {stdout}"
    );

    let stdout = run(&data, &[std::ffi::OsStr::new("status")]);
    assert!(
        stdout.contains("2 documents: 1 indexed, 1 failed, 0 pending"),
        "{stdout}"
    );
    assert!(
        stdout.contains("indexed  papers/tracemonkey.pdf  (14 pages"),
        "{stdout}"
    );

    let ask = [
        "ask",
        "--json",
        "--max-tokens",
        "48",
        "What is a trace tree in TraceMonkey?",
    ]
    .map(std::ffi::OsStr::new);
    let v: serde_json::Value = serde_json::from_str(&run(&data, &ask)).expect("one JSON object");
    assert!(v["answer"].is_string());
    let citations = v["citations"].as_array().unwrap();
    assert!(!citations.is_empty());
    assert!(
        citations
            .iter()
            .all(|c| c["path"] == "tracemonkey.pdf" && c["page_start"].as_u64().unwrap() >= 1)
    );
    assert!(v["stats"]["tokens"].as_u64().unwrap() <= 48);

    // A second index run finds nothing to do.
    let stdout = run(&data, &index);
    assert!(stdout.contains("0 chunks embedded in this run"), "{stdout}");
}
