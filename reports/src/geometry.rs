//! ZONE_DEVICE geometries and the struct page (vmemmap) model.
//!
//! The model ("mm, sparse-vmemmap: Introduce compound pagemaps", 2021, and the devdax
//! vmemmap fix of 2023): a range of N base pages needs
//! N * sizeof(struct page) / PAGE_SIZE vmemmap pages. A compound page of order k needs
//! 2^k * sizeof(struct page) / PAGE_SIZE of them, of which 2 remain when
//! `vmemmap_can_optimize()` holds (arch opt-in, power-of-two struct page, compound
//! geometry, no altmap); `memmap_init_zone_device` then initialises
//! 2 * PAGE_SIZE / sizeof(struct page) struct pages per compound page instead of 2^k.
//! With `--map=dev` (altmap) the struct pages live on the device. Page-table pages of the
//! vmemmap mapping are not modelled.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub const PAGE_SIZE: u64 = 4096;

/// Where the struct pages live: RAM (`--map=mem`) or the device itself (altmap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Map {
    Mem,
    Dev,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Geometry {
    /// device-dax with this alignment (4K/2M/1G: vmemmap_shift 0/9/18).
    Devdax { align: u64, map: Map },
    /// fsdax (struct pages per base page on kernels before compound fsdax folios).
    Fsdax { map: Map },
    /// Memory with no struct page at all (VM_PFNMAP): the floor, modelled only.
    Pfnmap,
}

pub const VALID_FORMS: &str = "devdax:4K|2M|1G:mem|dev, fsdax:mem|dev, pfnmap";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeometryError(pub String);

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid geometry '{}': valid forms are {VALID_FORMS}",
            self.0
        )
    }
}

impl std::error::Error for GeometryError {}

fn parse_map(s: &str) -> Option<Map> {
    match s {
        "mem" => Some(Map::Mem),
        "dev" => Some(Map::Dev),
        _ => None,
    }
}

impl FromStr for Geometry {
    type Err = GeometryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || GeometryError(s.to_string());
        let parts: Vec<&str> = s.trim().split(':').collect();
        match parts.as_slice() {
            ["pfnmap"] => Ok(Geometry::Pfnmap),
            ["fsdax", m] => Ok(Geometry::Fsdax {
                map: parse_map(m).ok_or_else(err)?,
            }),
            ["devdax", a, m] => {
                let align = match a.to_ascii_uppercase().as_str() {
                    "4K" => 4096,
                    "2M" => 2 << 20,
                    "1G" => 1 << 30,
                    _ => return Err(err()),
                };
                Ok(Geometry::Devdax {
                    align,
                    map: parse_map(m).ok_or_else(err)?,
                })
            }
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Geometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = |m: &Map| match m {
            Map::Mem => "mem",
            Map::Dev => "dev",
        };
        match self {
            Geometry::Devdax { align, map: m } => {
                let a = match *align {
                    4096 => "4K".to_string(),
                    x if x == 2 << 20 => "2M".to_string(),
                    x if x == 1 << 30 => "1G".to_string(),
                    x => format!("{x}"),
                };
                write!(f, "devdax:{a}:{}", map(m))
            }
            Geometry::Fsdax { map: m } => write!(f, "fsdax:{}", map(m)),
            Geometry::Pfnmap => write!(f, "pfnmap"),
        }
    }
}

impl Geometry {
    /// The default sweep: every devdax geometry, fsdax, and the floor.
    pub fn all() -> Vec<Geometry> {
        [
            "devdax:4K:mem",
            "devdax:2M:mem",
            "devdax:1G:mem",
            "devdax:4K:dev",
            "devdax:2M:dev",
            "devdax:1G:dev",
            "fsdax:mem",
            "fsdax:dev",
            "pfnmap",
        ]
        .iter()
        .map(|s| s.parse().expect("valid"))
        .collect()
    }

    /// log2(compound page / base page): devdax's vmemmap_shift.
    pub fn vmemmap_shift(&self) -> u32 {
        match self {
            Geometry::Devdax { align, .. } => (align / PAGE_SIZE).trailing_zeros(),
            _ => 0,
        }
    }

    pub fn map(&self) -> Option<Map> {
        match self {
            Geometry::Devdax { map, .. } | Geometry::Fsdax { map } => Some(*map),
            Geometry::Pfnmap => None,
        }
    }

    /// The alignment a namespace of this geometry needs (size must be a multiple).
    pub fn align(&self) -> u64 {
        match self {
            Geometry::Devdax { align, .. } => *align,
            _ => 2 << 20,
        }
    }
}

/// What the model says one geometry costs for `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRow {
    pub geometry: Geometry,
    pub size: u64,
    pub struct_page: u64,
    pub vmemmap_shift: u32,
    /// Whether the vmemmap optimization applies to this geometry (given the kernel's ability).
    pub optimized: bool,
    /// vmemmap pages in total, wherever they live.
    pub vmemmap_pages: u64,
    /// Of those, in RAM (the rest is on the device).
    pub ram_pages: u64,
    pub device_pages: u64,
    /// struct pages `memmap_init_zone_device` initialises.
    pub init_struct_pages: u64,
    /// PTE tables the vmemmap's mapping needs: an optimized (compound) vmemmap is mapped
    /// page by page, one PTE table per 2 MiB of it, all of it (tails reuse one page, but
    /// each still has its PTE); a base-page vmemmap is mapped by PMDs (x86), with none.
    /// For 1G geometries these tables are most of the cost. Absent in older results.
    #[serde(default)]
    pub pte_tables: u64,
}

/// The vmemmap's virtual span mapped by one PTE table (x86-64: 512 x 4 KiB).
const PTE_TABLE_SPAN: u64 = 2 << 20;
/// ... and by one PMD table.
const PMD_TABLE_SPAN: u64 = 1 << 30;

impl ModelRow {
    /// The page-table pages the kernel may allocate for this vmemmap: at least the PTE
    /// tables; at most also a PTE table at each end (a range whose vmemmap is not aligned
    /// to 2 MiB, or a partial section mapped by base pages) and the upper-level tables not
    /// present yet (a PMD table per GiB of vmemmap, a PUD table). Which upper levels exist
    /// depends on what was mapped before, so the model gives a range.
    pub fn page_tables_range(&self) -> (u64, u64) {
        let span = (self.size / PAGE_SIZE) * self.struct_page;
        (
            self.pte_tables,
            self.pte_tables + 2 + span.div_ceil(PMD_TABLE_SPAN) + 1,
        )
    }
}

/// The model for one geometry. `can_optimize`: the kernel side of `vmemmap_can_optimize()`
/// (arch opt-in and power-of-two struct page), from `doctor`.
pub fn model(g: Geometry, size: u64, struct_page: u64, can_optimize: bool) -> ModelRow {
    let pages = size / PAGE_SIZE;
    let shift = g.vmemmap_shift();
    let unoptimized = (pages * struct_page).div_ceil(PAGE_SIZE);
    let optimized =
        can_optimize && shift > 0 && g.map() == Some(Map::Mem) && struct_page.is_power_of_two();
    let (vmemmap_pages, init) = match g {
        Geometry::Pfnmap => (0, 0),
        _ if optimized => {
            let compound = pages >> shift;
            let kept_per_compound = 2;
            (
                compound * kept_per_compound,
                compound * (2 * PAGE_SIZE / struct_page),
            )
        }
        _ => (unoptimized, pages),
    };
    let on_device = g.map() == Some(Map::Dev);
    ModelRow {
        geometry: g,
        size,
        struct_page,
        vmemmap_shift: shift,
        optimized,
        vmemmap_pages,
        ram_pages: if on_device { 0 } else { vmemmap_pages },
        device_pages: if on_device { vmemmap_pages } else { 0 },
        init_struct_pages: init,
        pte_tables: if optimized {
            (pages * struct_page).div_ceil(PTE_TABLE_SPAN)
        } else {
            0
        },
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (u, m) in UNITS {
        if bytes >= m {
            let v = bytes as f64 / m as f64;
            return if v.fract() == 0.0 {
                format!("{v:.0} {u}")
            } else {
                format!("{v:.2} {u}")
            };
        }
    }
    format!("{bytes} B")
}

/// The capacity-planning table of `foliobench model`.
pub fn render_model(rows: &[ModelRow]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    if let Some(r) = rows.first() {
        let _ = writeln!(
            o,
            "struct page cost of {} ({}-byte struct page; the vmemmap's PTE tables apart, upper-level tables not included)",
            human(r.size),
            r.struct_page
        );
    }
    let _ = writeln!(
        o,
        "{:<15} {:>5} {:>9} {:>14} {:>12} {:>12} {:>12} {:>14} {:>10}",
        "geometry",
        "shift",
        "optimized",
        "vmemmap pages",
        "RAM",
        "device",
        "% of size",
        "init structs",
        "PTE tables"
    );
    for r in rows {
        let bytes = r.vmemmap_pages * PAGE_SIZE;
        let _ = writeln!(
            o,
            "{:<15} {:>5} {:>9} {:>14} {:>12} {:>12} {:>11.4}% {:>14} {:>10}",
            r.geometry.to_string(),
            r.vmemmap_shift,
            if r.optimized { "yes" } else { "no" },
            r.vmemmap_pages,
            human(r.ram_pages * PAGE_SIZE),
            human(r.device_pages * PAGE_SIZE),
            if r.size == 0 {
                0.0
            } else {
                bytes as f64 * 100.0 / r.size as f64
            },
            r.init_struct_pages,
            r.pte_tables
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn g(s: &str) -> Geometry {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_valid_form_and_round_trips() {
        for s in [
            "devdax:4K:mem",
            "devdax:2M:dev",
            "devdax:1G:mem",
            "fsdax:mem",
            "fsdax:dev",
            "pfnmap",
        ] {
            assert_eq!(g(s).to_string(), s);
        }
        assert_eq!(g("devdax:2m:mem"), g("devdax:2M:mem"));
        assert_eq!(g("devdax:1G:mem").vmemmap_shift(), 18);
        assert_eq!(g("devdax:2M:mem").vmemmap_shift(), 9);
        assert_eq!(g("devdax:4K:dev").vmemmap_shift(), 0);
        assert_eq!(Geometry::all().len(), 9);
    }

    #[test]
    fn bad_forms_name_the_valid_ones() {
        for bad in [
            "",
            "devdax",
            "devdax:2M",
            "devdax:3M:mem",
            "devdax:2M:ram",
            "fsdax",
            "fsdax:mem:x",
            "pfn",
            "pfnmap:mem",
            "devdax:2M:mem:x",
        ] {
            let e = bad.parse::<Geometry>().unwrap_err();
            assert!(e.to_string().contains(VALID_FORMS), "{e}");
            assert!(e.to_string().contains(&format!("'{bad}'")));
        }
    }

    /// The figures seen for 2 GiB on Debian's 6.12 in the test VM (seen with nr_memmap_pages): 8192 / 2048 / 4.
    #[test]
    fn model_matches_the_design_figures() {
        assert_eq!(
            model(g("devdax:4K:mem"), 2 * GIB, 64, true).vmemmap_pages,
            8192
        );
        assert_eq!(
            model(g("devdax:2M:mem"), 2 * GIB, 64, true).vmemmap_pages,
            2048
        );
        assert_eq!(
            model(g("devdax:1G:mem"), 2 * GIB, 64, true).vmemmap_pages,
            4
        );
        let dev = model(g("devdax:2M:dev"), 2 * GIB, 64, true);
        assert!(!dev.optimized, "altmap disables the optimization");
        assert_eq!(
            (dev.vmemmap_pages, dev.ram_pages, dev.device_pages),
            (8192, 0, 8192)
        );
        assert_eq!(model(g("pfnmap"), 2 * GIB, 64, true).vmemmap_pages, 0);
    }

    #[test]
    fn published_per_tib_figures() {
        let tib = 1u64 << 40;
        assert_eq!(
            model(g("devdax:4K:mem"), tib, 64, true).ram_pages * PAGE_SIZE,
            16 * GIB
        );
        assert_eq!(
            model(g("devdax:2M:mem"), tib, 64, true).ram_pages * PAGE_SIZE,
            4 * GIB
        );
    }

    #[test]
    fn one_gib_folios_cost_mostly_page_tables() {
        // The published ~40 MiB per TiB of 1G devdax: 2 vmemmap pages per folio (8 MiB)
        // and one PTE table per 2 MiB of a vmemmap mapped page by page (16 GiB: 32 MiB).
        let tib = 1u64 << 40;
        let one_g = model(g("devdax:1G:mem"), tib, 64, true);
        assert_eq!(one_g.ram_pages * PAGE_SIZE, 8 << 20);
        assert_eq!(one_g.pte_tables * PAGE_SIZE, 32 << 20);
        // A PMD-mapped vmemmap has no PTE tables; 2 GiB of 2M or 1G folios have 16.
        assert_eq!(model(g("devdax:4K:mem"), 2 * GIB, 64, true).pte_tables, 0);
        assert_eq!(model(g("devdax:2M:dev"), 2 * GIB, 64, true).pte_tables, 0);
        assert_eq!(model(g("devdax:2M:mem"), 2 * GIB, 64, true).pte_tables, 16);
        assert_eq!(model(g("devdax:1G:mem"), 2 * GIB, 64, true).pte_tables, 16);
        assert_eq!(
            model(g("devdax:1G:mem"), 2 * GIB, 64, true).page_tables_range(),
            (16, 20)
        );
        assert_eq!(
            model(g("devdax:4K:mem"), 2 * GIB, 64, true).page_tables_range(),
            (0, 4)
        );
    }

    #[test]
    fn init_counts_follow_compound_nr_pages() {
        // 2 * (PAGE_SIZE / sizeof(struct page)) = 128 per compound page when optimized.
        assert_eq!(
            model(g("devdax:2M:mem"), 2 * GIB, 64, true).init_struct_pages,
            1024 * 128
        );
        assert_eq!(
            model(g("devdax:2M:mem"), 2 * GIB, 64, false).init_struct_pages,
            2 * GIB / PAGE_SIZE
        );
        assert_eq!(
            model(g("devdax:4K:mem"), 2 * GIB, 64, true).init_struct_pages,
            2 * GIB / PAGE_SIZE
        );
    }

    #[test]
    fn table_lists_every_geometry_with_costs() {
        let rows: Vec<ModelRow> = Geometry::all()
            .into_iter()
            .map(|x| model(x, 1 << 40, 64, true))
            .collect();
        let t = render_model(&rows);
        assert!(
            t.contains("struct page cost of 1 TiB (64-byte struct page"),
            "{t}"
        );
        let line = |g: &str| t.lines().find(|l| l.starts_with(g)).unwrap().to_string();
        assert!(line("devdax:4K:mem").contains("16 GiB"), "{t}");
        assert!(line("devdax:2M:mem").contains("4 GiB") && line("devdax:2M:mem").contains("yes"));
        assert!(line("devdax:2M:dev").contains(" no ") && line("devdax:2M:dev").contains("16 GiB"));
        assert!(line("pfnmap").contains(" 0 "), "{t}");
    }

    #[test]
    fn no_optimization_without_power_of_two_struct_page() {
        let r = model(g("devdax:2M:mem"), 2 * GIB, 80, true);
        assert!(!r.optimized);
        assert_eq!(
            r.vmemmap_pages,
            (2 * GIB / PAGE_SIZE * 80).div_ceil(PAGE_SIZE)
        );
    }
}
