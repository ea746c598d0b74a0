//! Sizes as kernel people write them (2G, 512M, 4096K, plain bytes), binary units.

pub use foliobench_reports::units::{fmt_size, GIB, KIB, MIB};

use crate::exit::usage;

pub fn parse_size(what: &str, s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 1),
        Some((i, _)) => {
            let m = match t[i..].to_ascii_uppercase().as_str() {
                "K" | "KB" | "KIB" => KIB,
                "M" | "MB" | "MIB" => MIB,
                "G" | "GB" | "GIB" => GIB,
                "T" | "TB" | "TIB" => GIB * 1024,
                _ => {
                    return Err(usage(format!(
                        "{what}: '{s}' is not a size; write e.g. 2G, 512M or 4096K"
                    )))
                }
            };
            (&t[..i], m)
        }
    };
    let n: u64 = num.parse().map_err(|_| {
        usage(format!(
            "{what}: '{s}' is not a size; write e.g. 2G, 512M or 4096K"
        ))
    })?;
    n.checked_mul(mult)
        .ok_or_else(|| usage(format!("{what}: '{s}' is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{code_of, Code};

    #[test]
    fn sizes() {
        assert_eq!(parse_size("x", "2G").unwrap(), 2 * GIB);
        assert_eq!(parse_size("x", "512M").unwrap(), 512 * MIB);
        assert_eq!(parse_size("x", "512mib").unwrap(), 512 * MIB);
        assert_eq!(parse_size("x", "4096").unwrap(), 4096);
    }

    #[test]
    fn bad_sizes_are_usage_errors() {
        for bad in ["", "G", "2X", "-1G", "1.5G", "99999999999999999999G"] {
            let e = parse_size("--pmem", bad).unwrap_err();
            assert_eq!(code_of(&e), Code::Usage, "{bad}");
            assert!(e.to_string().contains("--pmem"), "{e}");
        }
    }
}
