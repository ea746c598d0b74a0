//! Any bytes as a results file: parse refuses or reads it, never panics; whatever it reads,
//! the comparison (which must find nothing changed against itself), the tables and the
//! charts must handle too.
#![no_main]

use foliobench_reports::compare::compare;
use foliobench_reports::report::{charts, html, markdown, Named};
use foliobench_reports::results::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = parse(text) else {
        return;
    };
    let c = compare(("a", &r), ("b", &r), 5.0, 0.05);
    // Found by this target: a subject measured twice was compared with the wrong twin.
    assert_eq!(c.regressions(), 0, "a file against itself never regresses");
    let _ = (c.render_text(), c.render_ktap(), c.render_junit(), c.render_markdown());
    let _ = r.render_text();
    for chart in charts(&r) {
        let _ = chart.svg();
    }
    let named = [Named {
        file: "a".into(),
        results: &r,
    }];
    let _ = html(&named, &[c.clone()]);
    let _ = markdown(&named, &[c]);
});
