//! Replays the kept fuzz corpus (fuzz/corpus, grown by `cargo +nightly fuzz run`) on stable
//! Rust, so every input the fuzzers once found interesting stays covered in CI: parsing
//! refuses or reads each, and whatever is read goes through the comparison, the tables and
//! the charts without a panic; geometries print back to themselves.

use std::path::Path;

use foliobench_reports::compare::{compare, Correction};
use foliobench_reports::geometry::Geometry;
use foliobench_reports::pin::PinMemory;
use foliobench_reports::report::{charts, html, markdown, Named};
use foliobench_reports::results::parse;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let v: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(v.len() > 10, "the {target} corpus is kept in git");
    v
}

#[test]
fn results_corpus() {
    let mut read = 0;
    for data in corpus("results_parse") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let Ok(r) = parse(text) else {
            continue;
        };
        read += 1;
        let c = compare(("a", &r), ("b", &r), 5.0, 0.05, Correction::Bh);
        assert_eq!(
            c.failures(),
            Vec::<String>::new(),
            "a file against itself never regresses nor loses: {}",
            c.render_text()
        );
        let _ = (
            c.render_text(),
            c.render_ktap(),
            c.render_junit(),
            c.render_markdown(),
        );
        let _ = r.render_text();
        for chart in charts(&r) {
            chart.svg().expect("a chart of parsed results draws");
        }
        let named = [Named {
            file: "a".into(),
            results: &r,
        }];
        html(&named, std::slice::from_ref(&c)).expect("the HTML report of parsed results");
        let _ = markdown(&named, &[c]);
    }
    // The seeds (real runs) at least.
    assert!(read >= 2, "{read} corpus files parse");
}

#[test]
fn geometry_corpus() {
    for data in corpus("geometry_parse") {
        let Ok(s) = std::str::from_utf8(&data) else {
            continue;
        };
        if let Ok(g) = s.parse::<Geometry>() {
            assert_eq!(g.to_string().parse::<Geometry>().ok(), Some(g), "{s:?}");
        }
        if let Ok(m) = s.parse::<PinMemory>() {
            assert_eq!(m.to_string().parse::<PinMemory>().ok(), Some(m), "{s:?}");
        }
    }
}
