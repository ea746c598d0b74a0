//! A table as terminal text no wider than a terminal: each header wrapped to its column
//! (the column as wide as its widest figure or the header's longest word), and the columns
//! that still do not fit continued in a block below, each block with the row labels; and a
//! suite's own aligned text fitted to the same width (`fit`).

use std::fmt::Write as _;

/// The widest line `report` prints in the terminal, first screen and details alike.
pub const TERMINAL: usize = 100;

/// `header` (the row labels' heading first) and `rows` (label, cells) as aligned text:
/// labels and names to the left, figures to the right, at most `max` columns wide where one
/// column and the labels fit. A row shorter than the header ends in free text (a refusal,
/// a skip), and so does every row whose last column is prose (rmap's batches): that text
/// takes the rest of the line, wrapped under itself, and does not widen its column.
pub fn render(header: &[String], rows: &[Vec<String>], max: usize) -> String {
    let t = Layout::of(header, rows, max);
    let mut o = String::new();
    for (b, cols) in t.blocks().iter().enumerate() {
        if b > 0 {
            o.push('\n');
        }
        t.header_lines(cols, &mut o);
        for r in rows {
            t.row(r, cols, &mut o);
        }
    }
    o
}

/// Where `render` puts each column.
struct Layout<'a> {
    header: &'a [String],
    max: usize,
    widths: Vec<usize>,
    /// Columns of names or prose: left-aligned.
    text: Vec<bool>,
    /// The last column is prose.
    free_last: bool,
    /// Each header wrapped to its column.
    wrapped: Vec<Vec<String>>,
}

impl<'a> Layout<'a> {
    fn of(header: &'a [String], rows: &[Vec<String>], max: usize) -> Layout<'a> {
        let n = header.len();
        let text: Vec<bool> = (0..n)
            .map(|i| {
                i > 0
                    && rows
                        .iter()
                        .filter(|r| r.len() >= n)
                        .any(|r| !is_figure(&r[i]))
            })
            .collect();
        let free_last = n > 1 && text[n - 1];
        let cell_width = |i: usize| {
            let w = rows
                .iter()
                .filter(|r| r.len() >= n || i + 1 < r.len())
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0);
            if free_last && i == n - 1 {
                w.min(24)
            } else {
                w
            }
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
        let wrapped = (0..n)
            .map(|i| {
                textwrap::wrap(&header[i], widths[i].max(1))
                    .into_iter()
                    .map(|c| c.into_owned())
                    .collect()
            })
            .collect();
        Layout {
            header,
            max,
            widths,
            text,
            free_last,
            wrapped,
        }
    }

    /// Blocks of columns that fit beside the labels.
    fn blocks(&self) -> Vec<Vec<usize>> {
        let w = &self.widths;
        let mut blocks: Vec<Vec<usize>> = vec![vec![]];
        let mut used = w.first().copied().unwrap_or(0);
        for (i, &wi) in w.iter().enumerate().skip(1) {
            let block = blocks.last_mut().expect("one block at least");
            if !block.is_empty() && used + 2 + wi > self.max {
                blocks.push(vec![i]);
                used = w[0] + 2 + wi;
            } else {
                block.push(i);
                used += 2 + wi;
            }
        }
        blocks
    }

    fn cell(&self, line: &mut String, i: usize, text: &str) {
        let w = self.widths[i];
        let _ = if self.text[i] {
            write!(line, "  {text:<w$}")
        } else {
            write!(line, "  {text:>w$}")
        };
    }

    /// The block's headers, bottom-aligned: a one-line header sits on the last line.
    fn header_lines(&self, cols: &[usize], o: &mut String) {
        let lines = cols
            .iter()
            .map(|&i| self.wrapped[i].len())
            .max()
            .unwrap_or(0);
        for l in 0..lines {
            let label = if l + 1 == lines {
                self.header[0].as_str()
            } else {
                ""
            };
            let mut line = format!("{label:<w$}", w = self.widths[0]);
            for &i in cols {
                let top = lines - self.wrapped[i].len();
                let text = if l >= top {
                    self.wrapped[i][l - top].as_str()
                } else {
                    ""
                };
                self.cell(&mut line, i, text);
            }
            let _ = writeln!(o, "{}", line.trim_end());
        }
    }

    /// One row's cells of the block; free text ends it.
    fn row(&self, r: &[String], cols: &[usize], o: &mut String) {
        let n = self.header.len();
        let free = if r.len() < n {
            Some(r.len() - 1)
        } else {
            self.free_last.then_some(n - 1)
        };
        if free.is_some_and(|f| cols.first().is_some_and(|&c| c > f)) {
            return; // its free text was shown in an earlier block
        }
        let mut line = format!("{:<w$}", r[0], w = self.widths[0]);
        for &i in cols {
            let cell = r.get(i).map_or("", String::as_str);
            if Some(i) == free {
                let at = line.chars().count() + 2;
                let _ = write!(line, "  {cell}");
                o.push_str(&wrap(line.trim_end(), self.max, &" ".repeat(at)));
                return;
            }
            self.cell(&mut line, i, cell);
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
}

/// Whether a cell reads as a figure (or stands for a missing one): right-aligned.
fn is_figure(c: &str) -> bool {
    c.is_empty()
        || c == "-"
        || c.starts_with(|ch: char| ch.is_ascii_digit() || "+-.±<>~≤≥".contains(ch))
}

/// A suite's own text fitted to `max` columns: a header line followed by rows that split
/// into the same four or more short cells (at runs of two or more spaces) is a table,
/// rendered again by `render` if one of its lines is too wide (the header cut where the
/// rows' columns end, as its words may be one space apart); any other line that is too wide
/// is wrapped, its continuation lines indented to where its last cell starting in the first
/// 60 columns starts (a check's text, a row's free-text column). Lines that fit stay as they
/// are.
///
/// Why by hand: the suites write their details as aligned text for a wide terminal, and
/// no crate reflows aligned columns; this keeps one writer per suite.
pub fn fit(text: &str, max: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut o = String::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(end) = table_at(&lines, i, max) {
            let n = row_cells(lines[i + 1]).map_or(0, |c| c.len());
            let rows: Vec<Vec<String>> = lines[i + 1..end]
                .iter()
                .filter_map(|l| row_cells(l))
                .collect();
            let header = cut_at_column_ends(lines[i], &lines[i + 1..end], n);
            let (header, rows) = labelled(header, rows);
            o.push_str(&render(&header, &rows, max));
            i = end;
            continue;
        }
        let line = lines[i];
        if line.chars().count() <= max {
            o.push_str(line);
            o.push('\n');
        } else {
            o.push_str(&wrap(line, max, &" ".repeat(hanging_indent(line))));
        }
        i += 1;
    }
    o
}

/// The leading columns that hold names, not figures (memory and driver), joined into the
/// row label, so that a block continued below still says which row is which.
fn labelled(header: Vec<String>, rows: Vec<Vec<String>>) -> (Vec<String>, Vec<Vec<String>>) {
    let n = header.len();
    let figure = |c: &str| {
        c.starts_with(|ch: char| ch.is_ascii_digit() || ch == '-' || ch == '+' || ch == '.')
    };
    let names = (0..n)
        .take_while(|&k| rows.iter().filter(|r| r.len() == n).all(|r| !figure(&r[k])))
        .count()
        .clamp(1, n.saturating_sub(1).max(1));
    let width = |k: usize| {
        rows.iter()
            .filter_map(|r| r.get(k))
            .chain(std::iter::once(&header[k]))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..names).map(width).collect();
    let join = |cells: &[String]| {
        let mut label = String::new();
        for (k, c) in cells.iter().enumerate().take(names) {
            if k + 1 < names {
                let _ = write!(label, "{c:<w$}  ", w = widths[k]);
            } else {
                label.push_str(c);
            }
        }
        label
    };
    let merge = |r: &[String]| -> Vec<String> {
        if r.len() <= names {
            return vec![r.join("  ")];
        }
        std::iter::once(join(r))
            .chain(r[names..].iter().cloned())
            .collect()
    };
    (merge(&header), rows.iter().map(|r| merge(r)).collect())
}

/// Where the table headed by line `i` ends, if a table too wide for `max` starts there: the
/// next line is a row of four or more short cells, and the rows go on while each has that
/// many cells, or fewer ending in free text (a refusal) from its label's column; at least
/// two full rows; the header reads as at least half as many cells (some run together).
fn table_at(lines: &[&str], i: usize, max: usize) -> Option<usize> {
    let full = |l: &str, n: usize| {
        row_cells(l)
            .is_some_and(|c| c.len() == n && c[..n - 1].iter().all(|x| x.chars().count() <= 30))
    };
    let first = row_cells(lines.get(i + 1)?)?;
    let n = first.len();
    if n < 4 || !full(lines[i + 1], n) {
        return None;
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    let short = |l: &str| {
        row_cells(l).is_some_and(|c| {
            (2..n).contains(&c.len()) && c[..c.len() - 1].iter().all(|x| x.chars().count() <= 30)
        }) && indent(l) == indent(lines[i + 1])
    };
    let end = (i + 1..lines.len())
        .find(|&j| !(full(lines[j], n) || short(lines[j])))
        .unwrap_or(lines.len());
    let fulls = lines[i + 1..end].iter().filter(|l| full(l, n)).count();
    let header = row_cells(lines[i]).map_or(0, |c| c.len());
    let wide = lines[i..end].iter().any(|l| l.chars().count() > max);
    (fulls >= 2 && 2 * header >= n && wide).then_some(end)
}

/// A header cut into the rows' columns: each cell the header's text up to where that column
/// ends in the rows (the figures are right-aligned under their headings).
fn cut_at_column_ends(header: &str, rows: &[&str], n: usize) -> Vec<String> {
    let ends = |row: &str| -> Vec<usize> {
        let starts = cell_starts(row);
        starts
            .iter()
            .map(|&s| s + row[s..].split("  ").next().unwrap_or("").len())
            .collect()
    };
    let mut columns: Vec<usize> = Vec::new();
    for r in rows.iter().filter(|r| cell_starts(r).len() == n) {
        for (k, e) in ends(r).into_iter().enumerate() {
            match columns.get_mut(k) {
                Some(c) => *c = (*c).max(e),
                None => columns.push(e),
            }
        }
    }
    let mut at = 0;
    let last = columns.len().saturating_sub(1);
    columns
        .iter()
        .enumerate()
        .map(|(k, &e)| {
            let e = if k == last {
                header.len()
            } else {
                e.min(header.len())
            };
            let cell = header.get(at..e).unwrap_or("").trim().to_string();
            at = e.max(at);
            cell
        })
        .collect()
}

/// A line's cells, split at runs of two or more spaces (`None` for a blank line).
fn row_cells(line: &str) -> Option<Vec<String>> {
    let starts = cell_starts(line);
    let cells: Vec<String> = starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let e = starts.get(k + 1).copied().unwrap_or(line.len());
            line[s..e].trim().to_string()
        })
        .collect();
    (!cells.is_empty()).then_some(cells)
}

/// Byte offsets where a line's cells start: the first non-space, then after each run of two
/// or more spaces.
fn cell_starts(line: &str) -> Vec<usize> {
    let b = line.as_bytes();
    let mut starts = Vec::new();
    let mut spaces = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b' ' {
            spaces += 1;
            continue;
        }
        if starts.is_empty() || spaces >= 2 {
            starts.push(i);
        }
        spaces = 0;
    }
    starts
}

/// Where a too-wide line's continuation lines start: at its last cell that starts within
/// the first 60 columns, else two past its own indentation.
fn hanging_indent(line: &str) -> usize {
    let own = line.len() - line.trim_start().len();
    cell_starts(line)
        .into_iter()
        .map(|s| line[..s].chars().count())
        .filter(|&s| s > own && s <= 60)
        .max()
        .unwrap_or(own + 2)
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

    /// The memmap suite's table and two of its lines from a recorded 6.12.118 run.
    const MEMMAP: &str = "\
foliobench run (memmap, pin) on 6.12.118+deb12-amd64 (Emulated CPU), namespace0.0 (2048 MiB), struct page 64 B
geometry         n  model pages       vmstat  probe RAM   init (ms)   init/4K  create ms destroy ms traced/x    MemFree     freed    usable
devdax:4K:mem    3         8192         8192       8192       22.13     1.000       9840       5715     0.91     -32.0M   +31.99M     2046M
devdax:2M:mem    3         2048         2048       2048        6.85     0.309       2774       1754     1.25      -7.7M    +8.08M     2046M
pfnmap           0            0            -          -           -         -          -          -        -          -         -         -

checks:
  devdax:4K:mem  ok       teardown frees every struct page (nr_memmap_pages back where it was)
  devdax:2M:mem  ok       memory the teardown gave back (free pages, per-CPU lists included) vs model's memmap in RAM and page tables: 8276 KiB
";

    #[test]
    fn a_suites_text_fits_the_terminal_tables_and_prose_alike() {
        let out = fit(MEMMAP, TERMINAL);
        assert!(out.lines().all(|l| l.chars().count() <= TERMINAL), "{out}");
        // The table is a table again: each row's label with its first figures, the rest
        // in a block below with the labels repeated.
        let rows: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("devdax:2M:mem"))
            .collect();
        assert_eq!(rows.len(), 2, "{out}");
        assert!(
            rows[0].contains("2048") && rows[0].contains("6.85"),
            "{out}"
        );
        assert!(
            rows[0].ends_with("+8.08M") && rows[1].ends_with("2046M"),
            "{out}"
        );
        // The header, cut where the rows' columns end ("create ms destroy ms" is one
        // space apart), heads both blocks.
        assert_eq!(out.lines().filter(|l| l.starts_with("geometry")).count(), 2);
        assert!(out.contains("create  destroy"), "{out}");
        // A check too wide wraps under its own text, not under its label.
        let at = out
            .lines()
            .position(|l| l.contains("memory the teardown gave back"))
            .unwrap();
        let next = out.lines().nth(at + 1).unwrap();
        let column = "  devdax:2M:mem  ok       ".len();
        assert_eq!(next.len() - next.trim_start().len(), column, "{out}");
        // What fits is left as it was.
        assert!(out.contains("\nchecks:\n  devdax:4K:mem  ok       teardown frees every"));
        assert!(out.contains("\nchecks:\n"));
    }

    #[test]
    fn text_that_fits_is_untouched() {
        let narrow = "a  b  c  d\n1  2  3  4\n\nprose line\n";
        assert_eq!(fit(narrow, TERMINAL), narrow);
    }

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
