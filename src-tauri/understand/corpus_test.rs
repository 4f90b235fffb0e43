//! Accuracy on the labelled corpus `tests/corpus/utterances.tsv`.
//!
//! Columns: `split intent language amount invoice receipt phone date text`. An empty cell means the
//! entity is absent. Dates are `+N`/`-N`/`0` (days from the fixed corpus day 2026-12-04, a Friday)
//! or `YYYY-MM-DD`.
//!
//! * Intent accuracy = correct intents / rows.
//! * Entity accuracy = correct entity cells / counted cells, where a cell counts when it is labelled
//!   or when something was extracted for it (so extracting an unlabelled entity is an error too).
//!
//! The test split must reach 0.95 on both; run `cargo test corpus -- --nocapture` to see the
//! figures, the confusion summary and every miss.

use super::{understand, Intent, Language};
use chrono::{Duration, NaiveDate};
use std::collections::BTreeMap;

const CORPUS: &str = include_str!("../../tests/corpus/utterances.tsv");

pub(crate) struct Row<'a> {
    pub split: &'a str,
    pub intent: Intent,
    pub language: Language,
    pub amount: Option<u64>,
    pub invoice: Option<&'a str>,
    pub receipt: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub date: Option<NaiveDate>,
    pub text: &'a str,
}

pub(crate) fn corpus_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 4).expect("valid")
}

fn cell(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

pub(crate) fn rows() -> Vec<Row<'static>> {
    let mut out = Vec::new();
    for (n, line) in CORPUS.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 9, "line {}: expected 9 columns: {line:?}", n + 1);
        let intent = Intent::from_name(f[1]).unwrap_or_else(|| panic!("line {}: bad intent {:?}", n + 1, f[1]));
        let language = match f[2] {
            "en" => Language::En,
            "sw" => Language::Sw,
            other => panic!("line {}: bad language {other:?}", n + 1),
        };
        let date = cell(f[7]).map(|d| {
            if let Ok(off) = d.parse::<i64>() {
                corpus_today() + Duration::days(off)
            } else {
                NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap_or_else(|_| panic!("line {}: bad date {d:?}", n + 1))
            }
        });
        out.push(Row {
            split: f[0],
            intent,
            language,
            amount: cell(f[3]).map(|a| a.parse().unwrap_or_else(|_| panic!("line {}: bad amount {a:?}", n + 1))),
            invoice: cell(f[4]),
            receipt: cell(f[5]),
            phone: cell(f[6]),
            date,
            text: f[8],
        });
    }
    out
}

pub(crate) struct Report {
    pub rows: usize,
    pub intent_ok: usize,
    pub entity_cells: usize,
    pub entity_ok: usize,
    pub language_ok: usize,
    pub misses: Vec<String>,
    /// (gold, predicted) → count
    pub confusion: BTreeMap<(&'static str, &'static str), usize>,
}

impl Report {
    pub fn intent_acc(&self) -> f64 {
        self.intent_ok as f64 / self.rows.max(1) as f64
    }
    pub fn entity_acc(&self) -> f64 {
        if self.entity_cells == 0 {
            1.0
        } else {
            self.entity_ok as f64 / self.entity_cells as f64
        }
    }
    pub fn language_acc(&self) -> f64 {
        self.language_ok as f64 / self.rows.max(1) as f64
    }
}

fn compare<T: PartialEq + std::fmt::Debug>(
    name: &str,
    gold: Option<T>,
    got: Option<T>,
    cells: &mut usize,
    ok: &mut usize,
    errs: &mut Vec<String>,
) {
    if gold.is_none() && got.is_none() {
        return;
    }
    *cells += 1;
    if gold == got {
        *ok += 1;
    } else {
        errs.push(format!("{name}: want {gold:?} got {got:?}"));
    }
}

pub(crate) fn evaluate(split: &str) -> Report {
    let mut r = Report {
        rows: 0,
        intent_ok: 0,
        entity_cells: 0,
        entity_ok: 0,
        language_ok: 0,
        misses: Vec::new(),
        confusion: BTreeMap::new(),
    };
    for row in rows().into_iter().filter(|row| row.split == split) {
        r.rows += 1;
        let u = understand(row.text, corpus_today());
        let mut errs = Vec::new();
        if u.intent == row.intent {
            r.intent_ok += 1;
        } else {
            *r.confusion.entry((row.intent.as_str(), u.intent.as_str())).or_default() += 1;
            errs.push(format!("intent: want {} got {} ({:.2})", row.intent.as_str(), u.intent.as_str(), u.confidence));
        }
        if u.language == row.language {
            r.language_ok += 1;
        } else {
            errs.push(format!("language: want {:?} got {:?}", row.language, u.language));
        }
        let e = &u.entities;
        compare("amount", row.amount, e.amount, &mut r.entity_cells, &mut r.entity_ok, &mut errs);
        compare("invoice", row.invoice, e.invoice.as_deref(), &mut r.entity_cells, &mut r.entity_ok, &mut errs);
        compare("receipt", row.receipt, e.receipt.as_deref(), &mut r.entity_cells, &mut r.entity_ok, &mut errs);
        compare("phone", row.phone, e.phone.as_deref(), &mut r.entity_cells, &mut r.entity_ok, &mut errs);
        compare("date", row.date, e.date, &mut r.entity_cells, &mut r.entity_ok, &mut errs);
        if !errs.is_empty() {
            r.misses.push(format!("  {:?}\n      {}", row.text, errs.join("; ")));
        }
    }
    r
}

fn print_report(split: &str, r: &Report) {
    println!(
        "[understand corpus:{split}] rows={} intent_accuracy={:.3} entity_accuracy={:.3} ({}/{} cells) language_accuracy={:.3}",
        r.rows,
        r.intent_acc(),
        r.entity_acc(),
        r.entity_ok,
        r.entity_cells,
        r.language_acc()
    );
    if !r.confusion.is_empty() {
        println!("  intent confusion (gold -> predicted: count):");
        for ((g, p), c) in &r.confusion {
            println!("    {g:>15} -> {p:<15} {c}");
        }
    }
    if !r.misses.is_empty() {
        println!("  misses:");
        for m in &r.misses {
            println!("{m}");
        }
    }
}

#[test]
fn corpus_is_well_formed_and_covers_every_intent() {
    let rows = rows();
    assert!(rows.len() >= 650, "corpus has {} rows", rows.len());
    let test = rows.iter().filter(|r| r.split == "test").count();
    let share = test as f64 / rows.len() as f64;
    assert!((0.2..=0.4).contains(&share), "test share {share:.2}");
    for split in ["train", "test"] {
        for i in Intent::ALL {
            for lang in [Language::En, Language::Sw] {
                let n = rows.iter().filter(|r| r.split == split && r.intent == i && r.language == lang).count();
                assert!(n > 0, "no {split} rows for {} in {lang:?}", i.as_str());
            }
        }
    }
    // test sentences are not copies of train sentences
    let norm = |s: &str| s.to_lowercase().chars().filter(|c| !c.is_ascii_punctuation()).collect::<String>().trim().to_string();
    let train: std::collections::HashSet<String> = rows.iter().filter(|r| r.split == "train").map(|r| norm(r.text)).collect();
    for r in rows.iter().filter(|r| r.split == "test") {
        assert!(!train.contains(&norm(r.text)), "test row duplicates train: {:?}", r.text);
    }
}

#[test]
fn corpus_train_split_figures() {
    // Informational: the split the rules were tuned on.
    let r = evaluate("train");
    print_report("train", &r);
}

#[test]
fn corpus_test_split_accuracy() {
    let r = evaluate("test");
    print_report("test", &r);
    assert!(
        r.intent_acc() >= 0.95 && r.entity_acc() >= 0.95,
        "test split below 0.95: intent {:.3}, entity {:.3} (see the confusion summary above)",
        r.intent_acc(),
        r.entity_acc()
    );
}
