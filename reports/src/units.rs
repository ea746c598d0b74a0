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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_units() {
        assert_eq!(fmt_size(2 * GIB), "2G");
        assert_eq!(fmt_size(1536 * MIB), "1536M");
        assert_eq!(fmt_size(4097), "4097");
    }
}
