//! The answers themselves, graded (`docchat eval --answers`): a small labelled set
//! over one paper, through the whole answer path of the default chat model. The
//! floor is set from measurements on this set (BENCHMARKS.md, "Answers": Gemma 3
//! 270M, 96 tokens, answers 3 of 8 with a key fact): an answer path that stops
//! answering fails here. (The base model writes no `[n]` markers, so "cited right"
//! is reported, not asserted, until the default is an instruction-tuned model.)

use crate::common::{corpus, manifest_dir, run};
use serde_json::Value;

/// At least this share of the answerable questions gets an answer with a key fact.
const MIN_ANSWERED: f64 = 0.25;

#[test]
fn answers_carry_the_key_fact() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let paper = corpus().join("pdf-wild/tracemonkey.pdf");
    let out = run(&data, &["index".as_ref(), paper.as_os_str()]);
    assert!(out.contains("1 indexed"), "{out}");

    // The paper's labelled questions, and one no document answers.
    let all = std::fs::read_to_string(manifest_dir().join("../../tests/eval/qa.jsonl")).unwrap();
    let mut subset: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("\"tracemonkey.pdf\"") && l.contains("\"facts\""))
        .collect();
    assert!(subset.len() >= 6, "{subset:?}");
    subset.push(r#"{"question": "Who won the 2018 FIFA World Cup?", "file": ""}"#);
    let questions = tmp.path().join("questions.jsonl");
    std::fs::write(&questions, subset.join("\n")).unwrap();

    let out = run(
        &data,
        &[
            "eval".as_ref(),
            questions.as_os_str(),
            "--answers".as_ref(),
            "--max-tokens".as_ref(),
            "96".as_ref(),
            "--json".as_ref(),
        ],
    );
    let reports: Value = serde_json::from_str(&out).unwrap();
    println!("{reports:#}");
    let r = &reports[0];
    assert_eq!(r["answerable"].as_u64().unwrap() as usize, subset.len() - 1);
    assert_eq!(r["unanswerable"], 1);
    let answers = r["answers"].as_array().unwrap();
    assert_eq!(answers.len(), subset.len());
    assert!(
        answers
            .iter()
            .all(|a| a["ttft_ms"].as_f64().unwrap() > 0.0
                && !a["answer"].as_str().unwrap().is_empty()),
        "every question got an answer: {r:#}"
    );
    let answered = r["answered"].as_f64().unwrap();
    assert!(answered >= MIN_ANSWERED, "answered {answered}: {r:#}");
}
