//! The first screen: per suite, one compact table of the figures the tool exists for (each
//! suite names them: `SuiteReport::first_screen`), the medians of its metrics per subject;
//! and the checks in one line, mismatches in full.

use crate::check::Check;
use crate::metric::Metric;
use crate::results::Results;
use crate::stats::median;

/// One suite's table: a row per subject, a column per chosen metric (its median).
pub struct SummaryTable {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
    /// What the table leaves out, and why (e.g. memories not pinned).
    pub notes: Vec<String>,
}

/// Every suite's table of one results file, in the order of the suites.
pub fn tables(r: &Results) -> Vec<SummaryTable> {
    r.parts()
        .map(|p| {
            let (title, chosen) = p.first_screen();
            let mut t = table(format!("{}: {title}", p.suite()), chosen, &p.metrics());
            t.notes = p.first_screen_notes();
            for (heading, cells) in p.first_screen_derived() {
                // A derived column may bring rows of its own (a suite whose table is all
                // derived: rmap's, a row per folio size).
                for (subject, _) in &cells {
                    if !t.rows.iter().any(|(s, _)| s == subject) {
                        let blank = vec!["-".to_string(); t.columns.len()];
                        t.rows.push((subject.clone(), blank));
                    }
                }
                t.columns.push(heading);
                for (subject, row) in &mut t.rows {
                    row.push(
                        cells
                            .iter()
                            .find(|(s, _)| s == subject)
                            .map_or("-".into(), |(_, c)| c.clone()),
                    );
                }
            }
            t
        })
        .filter(|t| !t.rows.is_empty())
        .collect()
}

fn table(title: String, chosen: &[(&str, &str)], metrics: &[Metric]) -> SummaryTable {
    let mut subjects: Vec<&str> = Vec::new();
    for m in metrics {
        if chosen.iter().any(|(n, _)| *n == m.name) && !subjects.contains(&m.subject.as_str()) {
            subjects.push(&m.subject);
        }
    }
    let rows = subjects
        .iter()
        .map(|s| {
            let cells = chosen
                .iter()
                .map(|(n, _)| {
                    metrics
                        .iter()
                        .find(|m| m.subject == *s && m.name == *n)
                        .and_then(|m| median(&m.samples))
                        .map_or("-".into(), short)
                })
                .collect();
            (s.to_string(), cells)
        })
        .collect();
    SummaryTable {
        title,
        columns: chosen.iter().map(|(_, c)| c.to_string()).collect(),
        rows,
        notes: vec![],
    }
}

pub use crate::units::short;

/// "12 ok, 1 mismatch, 3 not measured", and the mismatches (name, check).
pub fn checks(r: &Results) -> (String, Vec<(String, Check)>) {
    checks_of(&[r])
}

/// `checks` of several files of one boot, counted together.
pub fn checks_of(rs: &[&Results]) -> (String, Vec<(String, Check)>) {
    let all: Vec<(String, Check)> = rs.iter().flat_map(|r| r.checks()).collect();
    let ok = all.iter().filter(|(_, c)| c.measured && c.agrees).count();
    let skip = all.iter().filter(|(_, c)| !c.measured).count();
    let bad: Vec<(String, Check)> = all
        .into_iter()
        .filter(|(_, c)| c.measured && !c.agrees)
        .collect();
    (
        format!("{ok} ok, {} mismatch, {skip} not measured", bad.len()),
        bad,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::parse;

    /// The recorded 6.12 run: its memmap table has a row per geometry with the vmemmap in
    /// RAM and memmap_init; its checks line counts what the file holds.
    #[test]
    fn the_first_screen_of_a_recorded_run() {
        let r = parse(include_str!("../../tests/fixtures/matrix/6.12.117.json")).unwrap();
        let t = tables(&r);
        let memmap = t.iter().find(|t| t.title.starts_with("memmap")).unwrap();
        assert!(
            memmap.rows.iter().any(|(s, _)| s == "devdax:2M:mem"),
            "{:?}",
            memmap.rows
        );
        assert_eq!(memmap.columns.len(), memmap.rows[0].1.len());
        // Derived columns: per TiB from the measured pages, the model, the optimization.
        let cell = |t: &SummaryTable, row: &str, col: &str| {
            let c = t.columns.iter().position(|x| x == col).unwrap();
            let r = t.rows.iter().find(|(s, _)| s == row).unwrap();
            r.1[c].clone()
        };
        assert_eq!(cell(memmap, "devdax:4K:mem", "in RAM per TiB"), "16 GiB");
        assert_eq!(cell(memmap, "devdax:2M:mem", "in RAM per TiB"), "4 GiB");
        assert_eq!(cell(memmap, "devdax:1G:mem", "in RAM per TiB"), "8 MiB");
        assert_eq!(
            cell(memmap, "devdax:2M:mem", "vmemmap optimization"),
            "applied"
        );
        assert_eq!(
            cell(memmap, "devdax:4K:mem", "vmemmap optimization"),
            "does not apply"
        );
        assert_eq!(
            cell(memmap, "devdax:1G:mem", "model: pages in RAM / on device"),
            "4 / 0"
        );
        let pin = t.iter().find(|t| t.title.starts_with("pin")).unwrap();
        assert_eq!(cell(pin, "devdax:4K:mem io_uring", "time vs 4K"), "1.00×");
        assert_eq!(
            cell(pin, "devdax:2M:mem io_uring", "grabs per folio"),
            "512"
        );
        assert_eq!(cell(pin, "fsdax:mem odirect", "time vs 4K"), "-");
        assert!(t.iter().any(|t| t.title.starts_with("pin")));
        assert!(t.iter().any(|t| t.title.starts_with("fsdax")));
        let (line, bad) = checks(&r);
        assert!(line.ends_with("not measured"), "{line}");
        assert_eq!(line.contains(" 0 mismatch"), bad.is_empty());
    }

    /// rmap's table is all derived: a row per folio size in the suite's order, a column
    /// per operation, and munmap's batch (recorded 6.12 run: 512 pages for 2M folios).
    #[test]
    fn the_rmap_table_is_a_row_per_folio_size() {
        let r = parse(include_str!(
            "../../tests/fixtures/suites/rmap-6.12.118.json"
        ))
        .unwrap();
        let t = tables(&r);
        let rmap = t.iter().find(|t| t.title.starts_with("rmap")).unwrap();
        assert_eq!(rmap.rows[0].0, "4K", "{:?}", rmap.rows);
        assert_eq!(rmap.columns[0], "fork");
        let batch = rmap
            .columns
            .iter()
            .position(|c| c == "munmap batch")
            .unwrap();
        let row = |f: &str| &rmap.rows.iter().find(|(s, _)| s == f).unwrap().1;
        assert_eq!(row("2048K")[batch], "512");
        assert_eq!(row("4K")[batch], "1");
        assert!(rmap.rows.iter().all(|(_, c)| c.len() == rmap.columns.len()));
    }

    #[test]
    fn cells_read_without_exponents() {
        assert_eq!(short(8192.0), "8192");
        assert_eq!(short(0.07725), "0.07725");
        assert_eq!(short(22.1404), "22.140");
        assert_eq!(short(2757.53), "2757.5");
        assert_eq!(short(7.629e-6), "7.63e-6");
    }
}
