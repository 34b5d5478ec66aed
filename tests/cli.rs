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

#[test]
fn slides_sheets_and_chapters_are_indexed_and_cited_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let folder = tmp.path().join("desk");
    std::fs::create_dir_all(&folder).unwrap();
    for (from, to) in [
        (
            "pptx-wild/features_steps_test_files_tbl-cell.pptx",
            "tables.pptx",
        ),
        ("epub-wild/sous-le-vent.epub", "sous-le-vent.epub"),
        (
            "pptx-wild/features_steps_test_files_cht-chart-type.pptx",
            "charts.pptx",
        ),
        (
            "sheets-wild/tests_temperature-table.xlsx",
            "temperatures.xlsx",
        ),
    ] {
        std::fs::copy(corpus().join(from), folder.join(to)).unwrap();
    }
    let index = [std::ffi::OsStr::new("index"), folder.as_os_str()];
    let stdout = run(&data, &index);
    assert!(stdout.contains("3 indexed, 1 failed"), "{stdout}");
    assert!(stdout.contains("desk/charts.pptx: no text"), "{stdout}");
    let stdout = run(&data, &[std::ffi::OsStr::new("status")]);
    assert!(
        stdout.contains("indexed  desk/tables.pptx  (3 pages")
            && stdout.contains("indexed  desk/sous-le-vent.epub  (13 pages"),
        "{stdout}"
    );

    // A question about each cites its place first: the passage about the dart is
    // in the book's twelfth spine document, the temperatures on the workbook's
    // first sheet, the merged cells on the deck's second slide.
    for (question, path, page, place) in [
        (
            "fléchette Pacifique",
            "desk/sous-le-vent.epub",
            12,
            "chapter 12",
        ),
        ("fahrenheit", "desk/temperatures.xlsx", 1, "sheet 1"),
        ("merged cell", "desk/tables.pptx", 2, "slide 2"),
    ] {
        let args = [
            "ask",
            "--json",
            "--mode",
            "keyword",
            "--max-tokens",
            "8",
            question,
        ]
        .map(std::ffi::OsStr::new);
        let out: serde_json::Value = serde_json::from_str(&run(&data, &args)).unwrap();
        let first = &out["citations"][0];
        assert_eq!(
            (first["collection"].as_str(), first["path"].as_str()),
            (Some("desk"), path.strip_prefix("desk/")),
            "{question}: {out:#}"
        );
        assert_eq!(first["page_start"], page, "{question}: {out:#}");
        // The terminal says "slide 2", "sheet 1", "chapter 12".
        let args = ["search", "--mode", "keyword", question].map(std::ffi::OsStr::new);
        let hits = run(&data, &args);
        let top = hits.lines().next().unwrap_or_default();
        assert!(
            top.contains(&format!("{path} {place}")),
            "{question}: {hits}"
        );
    }
}

#[test]
fn collections_are_listed_added_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, "# my folders\n").unwrap();
    let cases = tmp.path().join("cases");
    std::fs::create_dir_all(&cases).unwrap();
    std::fs::copy(
        corpus().join("docx-wild/fixtures_line_spacing_line_spacing.docx"),
        cases.join("brief.docx"),
    )
    .unwrap();
    let collections = |args: &[&str]| {
        crate::common::outcome(
            crate::common::docchat()
                .arg("--data-dir")
                .arg(&data)
                .args(["collections", "--watch-dirs", watch.to_str().unwrap()])
                .args(args),
        )
    };

    let (code, out, err) = collections(&["add", cases.to_str().unwrap(), "--name", "Court cases"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Court cases"), "{out}");
    let text = std::fs::read_to_string(&watch).unwrap();
    assert!(
        text.starts_with("# my folders\n") && text.ends_with("cases = Court cases\n"),
        "{text}"
    );

    // Clear refusals: a missing folder, a file, a name or folder already there.
    let missing = tmp.path().join("nowhere");
    let (code, _, err) = collections(&["add", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    let file = cases.join("brief.docx");
    let (code, _, err) = collections(&["add", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a folder"), "{err}");
    let (code, _, err) = collections(&["add", cases.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("watched already"), "{err}");

    // The folder's documents are counted once indexed.
    let index = [
        std::ffi::OsStr::new("index"),
        cases.as_os_str(),
        std::ffi::OsStr::new("--collection"),
        std::ffi::OsStr::new("Court cases"),
    ];
    run(&data, &index);
    let (code, out, err) = collections(&["list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["name"], "Court cases", "{rows:#}");
    assert_eq!(rows[0]["indexed"], 1, "{rows:#}");
    assert_eq!(rows[0]["watched"], true);

    // Removing stops the watching; the documents stay until forgotten.
    let (code, out, err) = collections(&["remove", "Court cases"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("docchat forget"), "{out}");
    assert_eq!(std::fs::read_to_string(&watch).unwrap(), "# my folders\n");
    let (_, out, _) = collections(&["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["watched"], false, "{rows:#}");
    assert_eq!(rows[0]["indexed"], 1, "{rows:#}");
    let (code, _, err) = collections(&["remove", "Court cases"]);
    assert_eq!(code, 1);
    assert!(err.contains("no collection"), "{err}");
}
