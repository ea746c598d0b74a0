//! The running kernel's build configuration, where the kernel or its packaging exposes it.

use std::collections::HashMap;
use std::path::PathBuf;

/// Set by `foliobench vm` to the config file of the kernel it booted (the guest sees the
/// host's filesystem, but not that kernel's /boot).
pub const CONFIG_ENV: &str = "FOLIOBENCH_KERNEL_CONFIG";

#[derive(Debug, Clone)]
pub struct KernelConfig {
    pub source: PathBuf,
    values: HashMap<String, String>,
}

/// A config symbol's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Symbol {
    /// `CONFIG_X=y`, `=m` or a value.
    Set(String),
    /// `# CONFIG_X is not set`.
    NotSet,
    /// The kernel's Kconfig does not know the symbol (older or newer kernel).
    Unknown,
}

impl KernelConfig {
    /// Finds the config of the running kernel: $FOLIOBENCH_KERNEL_CONFIG, then the places
    /// distributions and build trees put it. `/proc/config.gz` is not read (gzip): Debian
    /// kernels do not have it, and a build tree's `.config` is found through `build`.
    pub fn find(release: &str) -> Option<KernelConfig> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os(CONFIG_ENV) {
            candidates.push(p.into());
        }
        candidates.push(format!("/boot/config-{release}").into());
        candidates.push(format!("/lib/modules/{release}/config").into());
        candidates.push(format!("/lib/modules/{release}/build/.config").into());
        candidates
            .into_iter()
            .find_map(|p| std::fs::read_to_string(&p).ok().map(|t| Self::parse(p, &t)))
    }

    pub fn parse(source: PathBuf, text: &str) -> KernelConfig {
        let mut values = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# CONFIG_") {
                if let Some(name) = rest.strip_suffix(" is not set") {
                    values.insert(name.to_string(), String::new());
                }
            } else if let Some(rest) = line.strip_prefix("CONFIG_") {
                if let Some((k, v)) = rest.split_once('=') {
                    values.insert(k.to_string(), v.trim_matches('"').to_string());
                }
            }
        }
        KernelConfig { source, values }
    }

    /// Looks up a symbol given without its `CONFIG_` prefix.
    pub fn get(&self, name: &str) -> Symbol {
        match self.values.get(name) {
            Some(v) if v.is_empty() => Symbol::NotSet,
            Some(v) => Symbol::Set(v.clone()),
            None => Symbol::Unknown,
        }
    }

    pub fn enabled(&self, name: &str) -> bool {
        matches!(self.get(name), Symbol::Set(v) if v == "y" || v == "m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_set_unset_and_unknown() {
        let c = KernelConfig::parse(
            "x".into(),
            "CONFIG_ZONE_DEVICE=y\nCONFIG_DEV_DAX=m\n# CONFIG_GUP_TEST is not set\nCONFIG_LOCALVERSION=\"-x\"\n",
        );
        assert!(c.enabled("ZONE_DEVICE"));
        assert!(c.enabled("DEV_DAX"));
        assert_eq!(c.get("GUP_TEST"), Symbol::NotSet);
        assert!(!c.enabled("GUP_TEST"));
        assert_eq!(c.get("ARCH_WANT_OPTIMIZE_DAX_VMEMMAP"), Symbol::Unknown);
        assert_eq!(c.get("LOCALVERSION"), Symbol::Set("-x".into()));
    }
}
