//! Shared helpers for the integration tests: run foliobench, read its doctor report.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The Debian kernels the VM tests boot, pinned to exact releases: `debian:6.12` means the
/// newest point release Debian offers, and the kernel under the tests must not change the
/// day Debian publishes one. These are the releases the tests' expectations were seen on;
/// move them (and anything they pin) together.
pub const DEBIAN_612: &str = "debian:6.12.117+deb12-amd64";
pub const DEBIAN_61: &str = "debian:6.1.0-56-amd64";
/// trixie-backports' 7.3: the split packaging (image, modules, base) of 6.19 on.
pub const DEBIAN_73: &str = "debian:7.3.4+deb13-amd64";

pub fn foliobench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_foliobench"))
}

pub fn run(cmd: &mut Command) -> Output {
    let start = std::time::Instant::now();
    let out = cmd.output().expect("running foliobench");
    took(cmd, start.elapsed());
    eprintln!(
        "--- {:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Says on the terminal, past the test harness's capture, what a long command cost, so that a
/// CI log shows where the suite's time goes (the VM tests are most of it).
fn took(cmd: &Command, elapsed: std::time::Duration) {
    use std::io::Write;
    if elapsed.as_secs() < 10 {
        return;
    }
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let what: Vec<_> = cmd
        .get_args()
        .take(3)
        .map(|a| a.to_string_lossy())
        .collect();
    let _ = writeln!(
        std::io::stderr(),
        "    {test}: foliobench {} ... took {:.0} s",
        what.join(" "),
        elapsed.as_secs_f64()
    );
}

pub fn read_json(p: &Path) -> Value {
    let text =
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", p.display()))
}

/// The element of the array `list` of a JSON object (a doctor report, a results row, a
/// comparison) whose `key` is `value`.
pub fn entry<'a>(d: &'a Value, list: &str, key: &str, value: &str) -> &'a Value {
    d[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} array"))
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no {list} entry with {key} = {value}"))
}

/// The entry of a BPF flavour in a doctor report.
pub fn flavour<'a>(d: &'a Value, name: &str) -> &'a Value {
    entry(d, "bpf", "flavour", name)
}

pub fn usable(d: &Value, name: &str) -> bool {
    let f = flavour(d, name);
    f["loads"] == true && f["attaches"] == true && f["fires"] == true
}

/// The resolution of a probe in a doctor report.
pub fn probe<'a>(d: &'a Value, id: &str) -> &'a Value {
    entry(d, "functions", "probe", id)
}

pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The `key` strings of the elements of the array `list` in a report.
pub fn names_of<'a>(d: &'a Value, list: &str, key: &str) -> Vec<&'a str> {
    d[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} array"))
        .iter()
        .map(|e| {
            e[key]
                .as_str()
                .unwrap_or_else(|| panic!("{list} entry without {key}"))
        })
        .collect()
}

/// A probe's stats in a trace report.
pub fn trace_probe<'a>(t: &'a Value, id: &str) -> &'a Value {
    t["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"] == id)
        .unwrap_or_else(|| panic!("{id} not traced: {t}"))
}

/// KTAP text as the kernel's own parser (kunit_parser.py, fetched by scripts/test.sh) reads
/// it: status, counts, test names and the parser's errors.
pub fn ktap_parsed(ktap: &str) -> Value {
    use std::io::Write as _;
    let dir = std::env::var("FOLIOBENCH_KUNIT_DIR")
        .unwrap_or_else(|_| format!("{}/.cache/foliobench/kunit", std::env::var("HOME").unwrap()));
    assert!(
        Path::new(&dir).join("kunit_parser.py").exists(),
        "the kernel's KTAP parser is not in {dir}: run scripts/test.sh, which fetches it"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ktap-check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .env("FOLIOBENCH_KUNIT_DIR", &dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ktap.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "ktap-check.py failed");
    serde_json::from_slice(&out.stdout).expect("ktap-check.py JSON")
}

/// Headless chromium on a local page with `args`; its stdout (the DOM, for --dump-dom).
fn chromium(args: &[String], page: &Path) -> String {
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .args(args)
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .output()
        .expect("chromium (installed by scripts/test.sh)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Loads an HTML report in headless chromium and returns the number of chart SVGs the page's
/// own script counted once the browser had parsed it (None: the page did not run it).
pub fn charts_in_chromium(html: &Path) -> Option<u64> {
    let dom = chromium(&["--dump-dom".into()], html);
    let at = dom.find("<body data-charts=\"")? + "<body data-charts=\"".len();
    dom[at..].split('"').next()?.parse().ok()
}

/// Validates a KCIDB I/O document with KernelCI's own `kcidb-io` package (in the venv
/// scripts/test.sh makes); the validator's complaint on failure.
pub fn kcidb_validate(doc: &str) -> Result<(), String> {
    use std::io::Write as _;
    let venv = std::env::var("FOLIOBENCH_KCIDB_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/foliobench/kcidb-venv",
            std::env::var("HOME").unwrap()
        )
    });
    let python = Path::new(&venv).join("bin/python");
    assert!(
        python.exists(),
        "no kcidb-io venv at {venv}: run scripts/test.sh, which makes it"
    );
    let mut child = Command::new(python)
        .args([
            "-c",
            "import json, sys, kcidb_io; kcidb_io.schema.LATEST.validate(json.load(sys.stdin))",
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Timings that followed the rounds rule (`foliobench_reports::precision::Rounds`, whose
/// decisions its unit tests pin): between `min` and `max` samples, every round past `min`
/// asked for by the rule given the rounds before it, and a stop where the rule says stop.
/// `timings` are one measurement's.
pub fn assert_rounds_followed_precision(
    timings: &[Vec<f64>],
    (min, max, target): (usize, usize, f64),
    what: &str,
) {
    use foliobench_reports::precision::Rounds;
    let rule = Rounds {
        min,
        max,
        target_pct: target,
    };
    let n = timings[0].len();
    assert!(timings.iter().all(|t| t.len() == n), "{what}: {timings:?}");
    assert!((min..=max).contains(&n), "{what}: {n} rounds: {timings:?}");
    let upto = |k: usize| timings.iter().map(|t| t[..k].to_vec()).collect::<Vec<_>>();
    // Every round past the minimum was one the rule asked for, given the rounds before it,
    // and the loop stopped where the rule said stop.
    for k in min..n {
        assert!(
            rule.want_more(k, &upto(k)),
            "{what}: went on after {k} rounds that needed no more: {timings:?}"
        );
    }
    assert!(
        !rule.want_more(n, &upto(n)),
        "{what}: stopped at {n} while the rule wanted more: {timings:?}"
    );
}

/// How a report lays out in Chromium at `width`×`height` (the script below, added to a
/// copy of the page): `scroll_width` (the page's, against `width`), `wide` (elements
/// reaching past the page's right edge outside a box that scrolls or clips them),
/// `first_screen` (the text shown above `height`), `summary_top` (the first summary
/// table's top, px; null if none). Also writes a screenshot of that window to `png`.
pub fn layout_in_chromium(html: &Path, width: u32, height: u32, png: &Path) -> serde_json::Value {
    const MEASURE: &str = r#"<script>
window.addEventListener('load', () => {
  const W = document.documentElement.clientWidth, H = window.innerHeight;
  const clipped = e => { for (let p = e.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
    return false; };
  const wide = [];
  for (const e of document.body.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > W + 1 && !clipped(e)) wide.push(e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ' ' + Math.round(r.right) + 'px');
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = [];
  for (let n; (n = walker.nextNode()); ) {
    const range = document.createRange(); range.selectNodeContents(n);
    const r = range.getBoundingClientRect();
    if (r.height > 0 && r.top < H && n.textContent.trim()) seen.push(n.textContent.trim());
  }
  const s = document.querySelector('table.summary');
  const out = document.createElement('pre'); out.id = 'foliobench-layout';
  out.textContent = JSON.stringify({ width: W, scroll_width: document.documentElement.scrollWidth,
    wide: wide.slice(0, 20), first_screen: seen.join('\n'),
    summary_top: s ? s.getBoundingClientRect().top : null });
  document.body.appendChild(out);
});
</script>"#;
    let page = std::fs::read_to_string(html).unwrap();
    let measured = html.with_extension("measured.html");
    std::fs::write(
        &measured,
        page.replace("</body>", &format!("{MEASURE}</body>")),
    )
    .unwrap();
    let window = format!("--window-size={width},{height}");
    let shot = [
        window.clone(),
        "--hide-scrollbars".into(),
        format!("--screenshot={}", png.display()),
    ];
    chromium(&shot, html);
    let measure = [
        window,
        "--hide-scrollbars".into(),
        "--dump-dom".into(),
        "--virtual-time-budget=3000".into(),
    ];
    let dom = chromium(&measure, &measured);
    let at = dom
        .find("<pre id=\"foliobench-layout\">")
        .expect("the measuring script ran")
        + "<pre id=\"foliobench-layout\">".len();
    let text = dom[at..].split("</pre>").next().unwrap();
    let json = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// A PNG's width and height, from its header.
pub fn png_size(png: &Path) -> (u32, u32) {
    let b = std::fs::read(png).unwrap();
    assert_eq!(&b[1..4], b"PNG", "{} is not a PNG", png.display());
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}
