//! `foliobench model`: the struct page cost of every geometry for any size (capacity
//! planning), from the model alone.

use anyhow::Result;
use foliobench_ebpf::btf::KernelBtf;
use foliobench_reports::geometry::{model, render_model, Geometry, ModelRow};

use crate::exit::{usage, Code};
use crate::output::OutputArgs;
use crate::units::parse_size;

#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// The capacity to model (e.g. 1T, 768G).
    #[arg(long)]
    pub size: String,
    /// sizeof(struct page). Default: the running kernel's, from BTF (64 if unreadable).
    #[arg(long, value_name = "BYTES")]
    pub struct_page: Option<u64>,
    /// Model a kernel where the vmemmap optimization cannot apply (no arch opt-in).
    #[arg(long)]
    pub no_vmemmap_optimization: bool,
    #[arg(long = "geometry", value_name = "G")]
    pub geometries: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The `--geometry` values given, parsed; all geometries when none is.
pub fn geometries(given: &[String]) -> Result<Vec<Geometry>> {
    if given.is_empty() {
        return Ok(Geometry::all());
    }
    given
        .iter()
        .map(|g| g.parse().map_err(|e| usage(format!("{e}"))))
        .collect()
}

pub fn run(a: ModelArgs) -> Result<Code> {
    let size = parse_size("--size", &a.size)?;
    if size == 0 || size % (2 << 20) != 0 {
        return Err(usage(format!(
            "--size {}: must be a positive multiple of 2M",
            a.size
        )));
    }
    let struct_page = match a.struct_page {
        Some(0) => return Err(usage("--struct-page must be positive")),
        Some(s) => s,
        None => KernelBtf::load()
            .ok()
            .and_then(|b| b.struct_size("page"))
            .unwrap_or(64),
    };
    let geometries = crate::model::geometries(&a.geometries)?;
    if let Some(g) = geometries.iter().find(|g| size % g.align() != 0) {
        return Err(usage(format!(
            "--size {}: not a multiple of {g}'s alignment",
            a.size
        )));
    }
    let rows: Vec<ModelRow> = geometries
        .iter()
        .map(|&g| model(g, size, struct_page, !a.no_vmemmap_optimization))
        .collect();
    a.output.emit(&rows, || render_model(&rows))?;
    Ok(Code::Ok)
}
