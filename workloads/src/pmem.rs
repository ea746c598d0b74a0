//! pmem regions and namespaces, read through `ndctl list` JSON (never its text).

use std::process::Command;

use serde::Deserialize;

pub use foliobench_reports::facts::{Namespace, PmemListing, Region};

pub fn list() -> PmemListing {
    let out = Command::new("ndctl")
        .args(["list", "--regions", "--namespaces", "--idle"])
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => PmemListing {
            regions: vec![],
            error: Some("ndctl is not installed (Debian package `ndctl`)".into()),
        },
        Err(e) => PmemListing {
            regions: vec![],
            error: Some(format!("running ndctl: {e}")),
        },
        Ok(o) if !o.status.success() => PmemListing {
            regions: vec![],
            error: Some(format!(
                "ndctl list failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
        },
        Ok(o) => match parse_list(&String::from_utf8_lossy(&o.stdout)) {
            Ok(regions) => PmemListing {
                regions,
                error: None,
            },
            Err(e) => PmemListing {
                regions: vec![],
                error: Some(format!("parsing ndctl JSON: {e}")),
            },
        },
    }
}

/// `ndctl list -R -N` prints nothing when there are no regions, an array of regions
/// otherwise, or an object with a `regions` key when other objects are listed too.
pub fn parse_list(json: &str) -> serde_json::Result<Vec<Region>> {
    if json.trim().is_empty() {
        return Ok(vec![]);
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        Regions(Vec<Region>),
        Object { regions: Vec<Region> },
        One(Region),
    }
    Ok(match serde_json::from_str(json)? {
        Shape::Regions(r) | Shape::Object { regions: r } => r,
        Shape::One(r) => vec![r],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_output_means_no_regions() {
        assert!(parse_list("").unwrap().is_empty());
        assert!(parse_list("\n").unwrap().is_empty());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_list("region0 fsdax").is_err());
    }

    #[test]
    fn recorded_guest_listing() {
        let r = parse_list(include_str!("../tests/fixtures/ndctl-list-612-fsdax.json")).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].dev, "region0");
        assert_eq!(r[0].size, 2 << 30);
        let ns = &r[0].namespaces[0];
        assert_eq!(ns.dev, "namespace0.0");
        assert_eq!(ns.mode.as_deref(), Some("fsdax"));
        assert_eq!(ns.map.as_deref(), Some("mem"));
        assert_eq!(ns.blockdev.as_deref(), Some("pmem0"));
    }
}
