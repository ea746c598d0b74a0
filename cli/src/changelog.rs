//! What Debian's changelog says changed between two kernel packages: the entries, between
//! two releases, whose subject names a probed function or the kernel area a suite measures
//! (`mm/gup`, `mm/sparse-vmemmap`, `mm/rmap`, `dax`, ...). `matrix` puts them next to a step
//! where a count or a check changed (`ab`, where a count did), so that "8192 -> 2048" comes
//! with the commit that did it — or with the note that the changelog names none.
//!
//! Debian's kernel packages carry the changelog of the source package: every upload's
//! stanza, each listing the upstream stable commits it took by subject. A stanza's version
//! is compared as dpkg does (hand-written: 40 lines of a fixed algorithm, where the crates
//! that have it bring a whole packaging library).

use std::cmp::Ordering;
use std::io::Read;
use std::path::{Path, PathBuf};

use foliobench_ebpf::catalog::{self, Target};
use foliobench_reports::matrix::{ChangelogEntry, StepChangelog};
use foliobench_reports::results::Results;
use foliobench_reports::suite::Suite;
use foliobench_workloads::suites::probe_groups;

/// One upload of the source package.
#[derive(Debug, Clone, PartialEq)]
pub struct Stanza {
    pub package: String,
    pub version: String,
    pub distribution: String,
    /// The items (`* ...`) and the upstream commits (`- ...`), continuation lines joined.
    pub entries: Vec<String>,
}

/// Every stanza of a Debian changelog, newest first as written.
pub fn parse(text: &str) -> Vec<Stanza> {
    let mut out: Vec<Stanza> = Vec::new();
    for line in text.lines() {
        if let Some(s) = header(line) {
            out.push(s);
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        let body = line.trim_start();
        if line.starts_with(" -- ") || body.is_empty() {
            continue;
        }
        if let Some(item) = body.strip_prefix("* ").or_else(|| body.strip_prefix("- ")) {
            cur.entries.push(item.trim().to_string());
        } else if let Some(last) = cur.entries.last_mut() {
            last.push(' ');
            last.push_str(body);
        }
    }
    out
}

/// `linux (6.12.117-1) trixie-security; urgency=high`.
fn header(line: &str) -> Option<Stanza> {
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    let (package, rest) = line.split_once(" (")?;
    let (version, rest) = rest.split_once(") ")?;
    let (distribution, _) = rest.split_once(';')?;
    Some(Stanza {
        package: package.to_string(),
        version: version.to_string(),
        distribution: distribution.trim().to_string(),
        entries: Vec::new(),
    })
}

/// dpkg's order of two versions (epoch:upstream-revision; `~` sorts before everything, even
/// the end of the string).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (u64, String, String) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u.to_string(), r.to_string()),
            None => (epoch, rest.to_string(), String::new()),
        }
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(&ua, &ub))
        .then_with(|| compare_part(&ra, &rb))
}

/// dpkg's verrevcmp: alternating non-digit runs (letters before non-letters, `~` first) and
/// numbers.
fn compare_part(a: &str, b: &str) -> Ordering {
    let order = |c: Option<char>| -> i32 {
        match c {
            None => 0,
            Some('~') => -1,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    };
    let (mut a, mut b) = (a.chars().peekable(), b.chars().peekable());
    loop {
        // The non-digit runs.
        loop {
            let (ca, cb) = (a.peek().copied(), b.peek().copied());
            let da = ca.is_none_or(|c| c.is_ascii_digit());
            let db = cb.is_none_or(|c| c.is_ascii_digit());
            if da && db {
                break;
            }
            let (oa, ob) = (
                if da { 0 } else { order(ca) },
                if db { 0 } else { order(cb) },
            );
            if oa != ob {
                return oa.cmp(&ob);
            }
            a.next();
            b.next();
        }
        let number = |it: &mut std::iter::Peekable<std::str::Chars>| -> u64 {
            let mut n = 0u64;
            while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(u64::from(d));
                it.next();
            }
            n
        };
        let (na, nb) = (number(&mut a), number(&mut b));
        if na != nb {
            return na.cmp(&nb);
        }
        if a.peek().is_none() && b.peek().is_none() {
            return Ordering::Equal;
        }
    }
}

/// A version without its rebuild suffix: `6.12.117-1~deb12u1` (bookworm's rebuild) and
/// `7.3.4-1~bpo13+1` (a backport) are the uploads `6.12.117-1` and `7.3.4-1` they rebuild,
/// which dpkg sorts after them.
fn upload(version: &str) -> &str {
    ["~deb", "~bpo"]
        .iter()
        .filter_map(|s| version.find(s))
        .min()
        .map_or(version, |i| &version[..i])
}

/// The stanzas after `base` up to and including `candidate` (dpkg order of the uploads).
pub fn between<'a>(stanzas: &'a [Stanza], base: &str, candidate: &str) -> Vec<&'a Stanza> {
    let (base, candidate) = (upload(base), upload(candidate));
    stanzas
        .iter()
        .filter(|s| {
            let v = upload(&s.version);
            compare_versions(v, base) == Ordering::Greater
                && compare_versions(v, candidate) != Ordering::Greater
        })
        .collect()
}

/// The kernel areas each suite measures, as subject prefixes (`mm/gup: ...`, `dax: ...`),
/// and the words that make an `mm: ...` subject one of them.
fn areas(suite: Suite) -> (&'static [&'static str], &'static [&'static str]) {
    match suite {
        Suite::Memmap => (
            &[
                "mm/sparse",
                "mm/memremap",
                "mm/mm_init",
                "mm/memory_hotplug",
                "mm/memory-hotplug",
                "device-dax",
                "dax",
                "libnvdimm",
                "nvdimm",
            ],
            &["memmap", "vmemmap", "pgmap", "zone_device", "devmap"],
        ),
        Suite::Pin => (
            &["mm/gup", "io_uring/rsrc", "mm/huge_memory", "device-dax"],
            &[
                "gup",
                "gup-fast",
                "pin_user_pages",
                "foll_longterm",
                "devmap",
            ],
        ),
        Suite::Rmap => (
            &[
                "mm/rmap",
                "mm/memory",
                "mm/huge_memory",
                "mm/madvise",
                "mm/mthp",
            ],
            &["rmap", "mapcount", "anon_vma", "mthp"],
        ),
        Suite::Fsdax => (&["fs/dax", "fsdax", "dax"], &["dax"]),
        Suite::Hugetlb => (
            &["mm/hugetlb", "hugetlb", "mm/hugetlb_vmemmap"],
            &["hugetlb", "hvo"],
        ),
    }
}

/// The functions the suite's probes attach to (their every candidate name).
fn probed_functions(suite: Suite) -> Vec<&'static str> {
    let groups: Vec<String> = probe_groups(suite).iter().map(|g| g.to_string()).collect();
    catalog::select(&groups)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|p| match p.target {
            Target::Function { names, .. } => names.to_vec(),
            _ => vec![],
        })
        .collect()
}

/// How an entry concerns a suite, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tie {
    /// It names a function the suite probes.
    Function,
    /// Its subsystem prefix is an area the suite measures (`mm/gup:`).
    Area,
    /// An `mm:` subject with one of the suite's words (`memmap`).
    Word,
}

/// Why an entry concerns a suite: the probed function or the area it names, if any.
pub fn concerns(entry: &str, suite: Suite, functions: &[&str]) -> Option<(Tie, String)> {
    let lower = entry.to_ascii_lowercase();
    // The subsystem prefixes: `ext4: dax: fix ...` has `ext4` and `dax`.
    let mut prefixes = Vec::new();
    let mut rest = lower.as_str();
    while let Some((p, r)) = rest.split_once(": ") {
        if p.contains(' ') {
            break;
        }
        prefixes.push(p);
        rest = r;
    }
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    if let Some(f) = functions.iter().find(|f| words.contains(f)) {
        return Some((Tie::Function, format!("names {f}()")));
    }
    let (area_prefixes, mm_words) = areas(suite);
    if let Some(p) = prefixes.iter().find(|p| {
        area_prefixes.iter().any(|a| {
            **p == *a
                || p.starts_with(&format!("{a}/"))
                || p.starts_with(&format!("{a}-"))
                || (a.contains('/') && p.starts_with(a))
        })
    }) {
        return Some((Tie::Area, format!("{p}:")));
    }
    let mm = prefixes
        .first()
        .is_some_and(|p| *p == "mm" || p.starts_with("mm/"));
    if mm {
        if let Some(w) = mm_words.iter().find(|w| words.contains(w)) {
            return Some((Tie::Word, format!("mm: \"{w}\"")));
        }
    }
    None
}

/// A changelog read from a kernel package's documentation.
pub struct Changelog {
    pub path: PathBuf,
    pub stanzas: Vec<Stanza>,
}

impl Changelog {
    /// The changelog in an unpacked kernel package (`usr/share/doc/*/changelog*.gz`).
    pub fn in_package(root: &Path) -> Option<Changelog> {
        let docs = root.join("usr/share/doc");
        let path = std::fs::read_dir(&docs)
            .ok()?
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
            .map(|f| f.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("changelog"))
                    && p.extension().is_some_and(|e| e == "gz")
            })
            // changelog.Debian.gz names Debian's uploads; a plain changelog.gz of a kernel
            // package is the same text (the signed package's).
            .min_by_key(|p| !p.to_string_lossy().contains("Debian"))?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).ok()?)
            .read_to_string(&mut text)
            .ok()?;
        Some(Changelog {
            stanzas: parse(&text),
            path,
        })
    }

    /// The changelog of the kernel a run booted, from the kernel cache.
    pub fn of_run(r: &Results) -> Option<Changelog> {
        let cache = crate::vm::boot_kernel::cache_dir().ok()?;
        Changelog::in_package(&cache.join(&r.context.kernel_release))
    }
}

/// The Debian version of the package a run booted (`linux-image-...=6.12.117-1~deb12u1`),
/// else the upstream version its release begins with.
pub fn package_version(r: &Results) -> Option<String> {
    if let Some(v) = r
        .context
        .machine
        .as_ref()
        .and_then(|m| m.kernel_package.as_deref())
        .and_then(|p| p.split_once('='))
    {
        return Some(v.1.to_string());
    }
    // `6.12.43+deb12-amd64` names its upstream version; `6.1.0-56-amd64` only an ABI.
    let (upstream, rest) = r.context.kernel_release.split_once("+deb")?;
    (!rest.is_empty()).then(|| upstream.to_string())
}

/// The entries of the step `base -> candidate` that concern the suites whose counts changed.
pub fn for_step(base: &Results, candidate: &Results, suites: &[Suite]) -> StepChangelog {
    let (Some(from), Some(to)) = (package_version(base), package_version(candidate)) else {
        return StepChangelog::none(
            "the package versions are unknown (not booted from Debian's packages)",
        );
    };
    let Some(log) = Changelog::of_run(candidate) else {
        return StepChangelog::none(&format!(
            "no changelog of {} in the kernel cache",
            candidate.context.kernel_release
        ));
    };
    step_entries(
        &log.stanzas,
        &from,
        &to,
        suites,
        &log.path.display().to_string(),
    )
}

/// For `ab`: where counts changed between two kernels, what the candidate's changelog says
/// about their suites (empty when no count changed).
pub fn behind_counts(
    cmp: &foliobench_reports::compare::Comparison,
    base: &Results,
    candidate: &Results,
) -> String {
    let suites = cmp.suites_with_count_changes();
    if suites.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = suites.iter().map(|s| s.name()).collect();
    let mut text = format!(
        "foliobench ab: counts of the {} suite changed between the kernels\n",
        names.join(", ")
    );
    for_step(base, candidate, &suites).render(&mut text);
    text
}

/// The step's entries from a parsed changelog (the candidate's, which holds the history).
pub fn step_entries(
    stanzas: &[Stanza],
    from: &str,
    to: &str,
    suites: &[Suite],
    source: &str,
) -> StepChangelog {
    let uploads = between(stanzas, from, to);
    let functions: Vec<(Suite, Vec<&str>)> =
        suites.iter().map(|&s| (s, probed_functions(s))).collect();
    let mut found: Vec<(Tie, ChangelogEntry)> = Vec::new();
    for s in &uploads {
        for e in &s.entries {
            if found.iter().any(|(_, x)| x.subject == *e) {
                continue; // the bookworm rebuild repeats the trixie upload
            }
            let strongest = functions
                .iter()
                .filter_map(|(suite, f)| concerns(e, *suite, f).map(|(t, why)| (t, *suite, why)))
                .min_by_key(|(t, _, _)| *t);
            if let Some((tie, suite, why)) = strongest {
                found.push((
                    tie,
                    ChangelogEntry {
                        version: s.version.clone(),
                        suite: suite.name().to_string(),
                        subject: e.clone(),
                        why,
                    },
                ));
            }
        }
    }
    // Named functions first, then the suites' own areas, then mm-wide words; newest
    // upload first within each (the stable sort keeps the changelog's order).
    found.sort_by_key(|(t, _)| *t);
    let entries = found.into_iter().map(|(_, e)| e).collect();
    let upstream = |v: &str| {
        v.split(['.', '~', '-'])
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    };
    let note = if uploads.is_empty() {
        Some(format!(
            "the changelog has no upload between {from} and {to}"
        ))
    } else if upstream(from) != upstream(to) {
        Some(format!(
            "{from} -> {to} crosses mainline releases: the changelog lists Debian's uploads and the stable updates they took, not the merge windows' commits"
        ))
    } else {
        None
    };
    StepChangelog {
        from: from.to_string(),
        to: to.to_string(),
        source: source.to_string(),
        uploads: uploads.len(),
        entries,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXCERPT: &str = include_str!("../tests/fixtures/changelog-6.12.118-excerpt");

    #[test]
    fn dpkg_order() {
        use Ordering::*;
        for (a, b, o) in [
            ("6.12.117-1", "6.12.118-1", Less),
            ("6.12.117-1~deb12u1", "6.12.117-1", Less),
            ("6.12.118+1~deb12u1", "6.12.118-1", Greater),
            ("7.3~rc7-1~exp1", "7.3-1", Less),
            ("7.3.1-1~exp1", "7.3~rc7-1~exp1", Greater),
            ("6.12.9-1", "6.12.10-1", Less),
            ("6.1.192-3", "6.1.192-3", Equal),
            ("1:1.0-1", "2.0-1", Greater),
        ] {
            assert_eq!(compare_versions(a, b), o, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), o.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parses_the_recorded_changelog() {
        let s = parse(EXCERPT);
        assert_eq!(s.len(), 9);
        assert_eq!(s[0].package, "linux-signed-6.12-amd64");
        assert_eq!(s[0].version, "6.12.118+1~deb12u1");
        assert_eq!(s[1].version, "6.12.118-1");
        assert_eq!(s[1].distribution, "trixie-security");
        assert!(s[1].entries.contains(
            &"mm/gup: fix out-of-bounds write for nr_pages == 0 in GUP-fast".to_string()
        ));
        // A subject continued on the next line is one entry.
        assert!(s
            .iter()
            .flat_map(|s| &s.entries)
            .all(|e| !e.starts_with(' ') && !e.is_empty()));
    }

    #[test]
    fn a_step_lists_the_entries_of_its_uploads_that_concern_the_suite() {
        let s = parse(EXCERPT);
        let pin = step_entries(
            &s,
            "6.12.117-1~deb12u1",
            "6.12.118-1~deb12u1",
            &[Suite::Pin],
            "x",
        );
        // 6.12.118-1's upload (which 6.12.118-1~deb12u1 rebuilds); the four mm/gup commits
        // are its.
        let gup: Vec<&ChangelogEntry> = pin
            .entries
            .iter()
            .filter(|e| e.subject.starts_with("mm/gup"))
            .collect();
        assert_eq!(gup.len(), 4, "{:#?}", pin.entries);
        assert!(gup.iter().all(|e| e.version == "6.12.118-1"));
        assert!(pin.note.is_none());
        // The step before it has none of them.
        let before = step_entries(&s, "6.12.116-1", "6.12.117-1~deb12u1", &[Suite::Pin], "x");
        assert!(before
            .entries
            .iter()
            .all(|e| !e.subject.starts_with("mm/gup")));
        assert!(before.uploads >= 2);
        // No upload between a version and itself.
        let none = step_entries(&s, "6.12.118-1", "6.12.118-1", &[Suite::Pin], "x");
        assert_eq!(none.uploads, 0);
        assert!(none.note.as_deref().unwrap().contains("no upload"));
    }

    /// The step that fixed the memmap accounting of optimised devdax on 6.12 (the matrix
    /// measured nr_memmap_pages 8192 -> 2048 at devdax:2M across it).
    #[test]
    fn the_accounting_fix_is_named_at_its_step() {
        let s = parse(include_str!("../tests/fixtures/changelog-6.12.101-excerpt"));
        let step = step_entries(
            &s,
            "6.12.100-1~deb12u1",
            "6.12.101-1~deb12u1",
            &[Suite::Memmap],
            "x",
        );
        assert_eq!(
            step.uploads, 1,
            "6.12.101-1 (its signed wrapper is a rebuild)"
        );
        let subjects: Vec<&str> = step.entries.iter().map(|e| e.subject.as_str()).collect();
        assert!(
            subjects.contains(&"mm/sparse-vmemmap: fix DAX vmemmap accounting with optimization"),
            "{subjects:#?}"
        );
        assert!(step
            .entries
            .iter()
            .all(|e| e.version == "6.12.101-1" && e.suite == "memmap"));
        // The pin suite's step over the same uploads does not claim it.
        let pin = step_entries(
            &s,
            "6.12.100-1~deb12u1",
            "6.12.101-1~deb12u1",
            &[Suite::Pin],
            "x",
        );
        assert!(pin
            .entries
            .iter()
            .all(|e| !e.subject.contains("sparse-vmemmap")));
    }

    #[test]
    fn an_entry_concerns_a_suite_by_prefix_function_or_mm_word() {
        let f = probed_functions(Suite::Memmap);
        assert!(f.contains(&"memmap_init_zone_device"));
        let yes = [
            (
                "mm/sparse-vmemmap: fix DAX vmemmap accounting with optimization",
                Suite::Memmap,
            ),
            ("mm: fix accounting of memmap pages", Suite::Memmap),
            (
                "device-dax: correct pgoff align in dax_set_mapping()",
                Suite::Memmap,
            ),
            (
                "mm/gup: fix out-of-bounds write for nr_pages == 0 in GUP-fast",
                Suite::Pin,
            ),
            (
                "mm/rmap: don't discard lazyfree THPs at PMD level",
                Suite::Rmap,
            ),
            (
                "ext4: dax: fix overflowing extents beyond inode size",
                Suite::Fsdax,
            ),
            (
                "mm/hugetlb_vmemmap: fix incorrect vmemmap restore in rollback",
                Suite::Hugetlb,
            ),
        ];
        for (e, s) in yes {
            assert!(
                concerns(e, s, &probed_functions(s)).is_some(),
                "{e} for {s:?}"
            );
        }
        let no = [
            (
                "xfs: don't queue rmap update twice when reaping a fork",
                Suite::Rmap,
            ),
            (
                "dm-writecache: fix a crash if we attempt to use non-dax device",
                Suite::Memmap,
            ),
            (
                "drm/nouveau: reject zero-size notifier object allocation",
                Suite::Pin,
            ),
            (
                "mm/gup: fix clearing folios in memfd_pin_folios()",
                Suite::Memmap,
            ),
        ];
        for (e, s) in no {
            assert_eq!(concerns(e, s, &probed_functions(s)), None, "{e} for {s:?}");
        }
    }
}
