//! A table as terminal text no wider than a terminal: each header wrapped to its column
//! (the column as wide as its widest figure or the header's longest word), and the columns
//! that still do not fit continued in a block below, each block with the row labels.

use std::fmt::Write as _;

/// The widest line `report` prints on its first screen.
pub const TERMINAL: usize = 100;

/// `header` (the row labels' heading first) and `rows` (label, cells) as aligned text:
/// labels to the left, figures to the right, at most `max` columns wide where one column
/// and the labels fit.
pub fn render(header: &[String], rows: &[Vec<String>], max: usize) -> String {
    let n = header.len();
    let cell_width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let longest_word = |i: usize| {
        header[i]
            .split_whitespace()
            .map(|w| w.chars().count())
            .max()
            .unwrap_or(0)
    };
    // As wide as each header where that fits; else the widest headers wrapped first,
    // down to their figures or longest word.
    let mut widths: Vec<usize> = (0..n)
        .map(|i| cell_width(i).max(header[i].chars().count()))
        .collect();
    let least: Vec<usize> = (0..n).map(|i| cell_width(i).max(longest_word(i))).collect();
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * n.saturating_sub(1);
    while total(&widths) > max {
        let Some(i) = (1..n)
            .filter(|&i| widths[i] > least[i])
            .max_by_key(|&i| widths[i])
        else {
            break;
        };
        widths[i] = least[i];
    }
    let wrapped: Vec<Vec<String>> = (0..n)
        .map(|i| {
            textwrap::wrap(&header[i], widths[i].max(1))
                .into_iter()
                .map(|c| c.into_owned())
                .collect()
        })
        .collect();
    // Blocks of columns that fit beside the labels.
    let mut blocks: Vec<Vec<usize>> = vec![vec![]];
    let mut used = widths.first().copied().unwrap_or(0);
    for i in 1..n {
        let block = blocks.last_mut().expect("one block at least");
        if !block.is_empty() && used + 2 + widths[i] > max {
            blocks.push(vec![i]);
            used = widths[0] + 2 + widths[i];
        } else {
            block.push(i);
            used += 2 + widths[i];
        }
    }
    let mut o = String::new();
    for (b, cols) in blocks.iter().enumerate() {
        if b > 0 {
            o.push('\n');
        }
        let lines = cols.iter().map(|&i| wrapped[i].len()).max().unwrap_or(0);
        for l in 0..lines {
            let mut line = format!("{:<w$}", "", w = widths[0]);
            for &i in cols {
                // Bottom-aligned: a one-line header sits on the last line.
                let top = lines - wrapped[i].len();
                let text = if l >= top {
                    wrapped[i][l - top].as_str()
                } else {
                    ""
                };
                let _ = write!(line, "  {text:>w$}", w = widths[i]);
            }
            let _ = writeln!(o, "{}", line.trim_end());
        }
        for r in rows {
            let mut line = format!("{:<w$}", r[0], w = widths[0]);
            for &i in cols {
                let cell = r.get(i).map_or("", String::as_str);
                let _ = write!(line, "  {cell:>w$}", w = widths[i]);
            }
            let _ = writeln!(o, "{}", line.trim_end());
        }
    }
    o
}

/// Prose wrapped at `max` columns, continuation lines indented by `indent`.
pub fn wrap(text: &str, max: usize, indent: &str) -> String {
    let opts = textwrap::Options::new(max).subsequent_indent(indent);
    let mut o = textwrap::wrap(text, opts).join("\n");
    o.push('\n');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_wide_table_wraps_headers_then_continues_below() {
        // The memmap first screen of a recorded 6.12 run: 211 columns on one line.
        let header = s(&[
            "",
            "vmemmap in RAM (pages)",
            "nr_memmap_pages change",
            "struct pages initialised",
            "memmap_init_zone_device (ms)",
            "create-namespace (ms)",
            "in RAM per TiB",
            "model: pages in RAM / on device",
            "vmemmap optimization",
        ]);
        let four_k = [
            "8192",
            "8192",
            "524288",
            "22.129",
            "9840.0",
            "16 GiB",
            "8192 / 0",
            "does not apply",
        ];
        let rows = vec![
            std::iter::once("devdax:4K:mem".to_string())
                .chain(s(&four_k))
                .collect(),
            s(&[
                "devdax:1G:mem",
                "4",
                "4",
                "256",
                "0.077253",
                "6813.5",
                "8 MiB",
                "4 / 0",
                "applied",
            ]),
        ];
        let text = render(&header, &rows, TERMINAL);
        assert!(
            text.lines().all(|l| l.chars().count() <= TERMINAL),
            "{text}"
        );
        // Every figure is there, on the row of its label.
        let row = |label: &str| -> String {
            text.lines()
                .filter(|l| l.starts_with(label))
                .collect::<Vec<_>>()
                .join(" ")
        };
        for f in four_k {
            assert!(row("devdax:4K:mem").contains(f), "{f}: {text}");
        }
        assert!(row("devdax:1G:mem").contains("0.077253"));
        assert!(
            text.contains("memmap_init_zone_device"),
            "a word is never cut: {text}"
        );
        // A narrow table is one block with one header line.
        let small = render(
            &s(&["", "pin (ms)"]),
            &[s(&["anon:4K", "86.069"])],
            TERMINAL,
        );
        assert_eq!(small, "         pin (ms)\nanon:4K    86.069\n");
    }

    #[test]
    fn a_table_that_fits_is_not_split() {
        let header = s(&["", "a", "b"]);
        let text = render(&header, &[s(&["x", "1", "2"])], 10);
        assert_eq!(text, "   a  b\nx  1  2\n");
        // Ten columns wide: the second column goes below.
        let text = render(&s(&["", "aaaa", "bbbb"]), &[s(&["xx", "1", "2"])], 10);
        assert_eq!(text, "    aaaa\nxx     1\n\n    bbbb\nxx     2\n");
    }
}
