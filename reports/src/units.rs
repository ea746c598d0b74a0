//! Sizes as kernel people write them: binary units, exact (2G, 512M, 4096K).

pub const KIB: u64 = 1024;
pub const MIB: u64 = KIB * 1024;
pub const GIB: u64 = MIB * 1024;

/// 2147483648 -> "2G"; exact units only, else bytes.
pub fn fmt_size(b: u64) -> String {
    for (u, m) in [("T", GIB * 1024), ("G", GIB), ("M", MIB), ("K", KIB)] {
        if b >= m && b % m == 0 {
            return format!("{}{u}", b / m);
        }
    }
    format!("{b}")
}

/// A figure as the comparison tables print it: below 1, with an exponent.
pub fn num(x: f64) -> String {
    figure(x, |x| format!("{x:.3e}"))
}

/// Whole numbers whole, at least 100 to one decimal, at least 1 to three; below 1 as
/// `small` says.
pub fn figure(x: f64, small: fn(f64) -> String) -> String {
    let a = x.abs();
    if x.fract() == 0.0 && a < 1e15 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.3}")
    } else {
        small(x)
    }
}

/// A figure for a table cell: whole numbers whole, others to about four significant
/// digits, without an exponent unless the figure is tiny.
pub fn short(x: f64) -> String {
    figure(x, |x| {
        if x.abs() >= 1e-4 {
            format!("{x:.6}").trim_end_matches('0').to_string()
        } else {
            format!("{x:.2e}")
        }
    })
}

/// Bytes in the largest binary unit they fill, to about four digits ("16 GiB", "8 MiB",
/// "3.938 GiB").
pub fn fmt_bytes(b: f64) -> String {
    for (u, m) in [
        ("TiB", GIB * 1024),
        ("GiB", GIB),
        ("MiB", MIB),
        ("KiB", KIB),
    ] {
        if b >= m as f64 {
            return format!("{} {u}", short(b / m as f64));
        }
    }
    format!("{b} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_their_unit() {
        assert_eq!(fmt_bytes((16 * GIB) as f64), "16 GiB");
        assert_eq!(fmt_bytes((8 * MIB) as f64), "8 MiB");
        assert_eq!(fmt_bytes(1.5 * GIB as f64), "1.500 GiB");
        assert_eq!(fmt_bytes(512.0), "512 B");
    }

    #[test]
    fn exact_units() {
        assert_eq!(fmt_size(2 * GIB), "2G");
        assert_eq!(fmt_size(1536 * MIB), "1536M");
        assert_eq!(fmt_size(4097), "4097");
    }
}
