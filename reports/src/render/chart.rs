//! Grouped bar charts as SVG, drawn with plotters: one category per geometry, memory or
//! folio size, one bar per series, and the raw samples as dots over their bar (so a
//! distribution is seen, not only its median). Every chart of the HTML report is one of
//! these.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

pub struct Series {
    pub name: String,
    /// One value per category (None: no bar).
    pub values: Vec<Option<f64>>,
    /// The raw samples per category, drawn as dots (empty: none).
    pub samples: Vec<Vec<f64>>,
}

impl Series {
    /// Bars at the medians of the samples, with the samples drawn as dots.
    pub fn of_samples(name: impl Into<String>, samples: Vec<Vec<f64>>) -> Series {
        Series {
            name: name.into(),
            values: samples.iter().map(|s| crate::stats::median(s)).collect(),
            samples,
        }
    }

    /// Bars only.
    pub fn of_values(name: impl Into<String>, values: Vec<Option<f64>>) -> Series {
        Series {
            name: name.into(),
            values,
            samples: vec![],
        }
    }
}

pub struct Chart {
    pub title: String,
    pub y_label: String,
    /// Log10 y axis (for quantities spanning orders of magnitude); values <= 0 are left out.
    pub log_y: bool,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .into()
    }
}

/// The SVG drawing area and the bar chart plotted on it.
type SvgArea<'b> = DrawingArea<SVGBackend<'b>, Shift>;
type SvgChart<'b> = ChartContext<'b, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type DrawResult<T = ()> = Result<T, DrawingAreaErrorKind<std::io::Error>>;

/// Where one series' bars stand: the kept series share 0.8 of each category's width,
/// side by side in legend order.
#[derive(Clone, Copy)]
struct BarSlot {
    /// The series' index among the kept ones.
    series: usize,
    /// One bar's share of a category's width.
    width: f64,
}

impl BarSlot {
    fn color(&self) -> RGBColor {
        PALETTE[self.series % PALETTE.len()]
    }

    /// The left edge of the bar in category `i`.
    fn left(&self, i: usize) -> f64 {
        i as f64 - 0.4 + self.series as f64 * self.width
    }
}

impl Chart {
    fn y(&self, v: f64) -> Option<f64> {
        if self.log_y {
            (v > 0.0).then(|| v.log10())
        } else {
            Some(v)
        }
    }

    /// Whether there is anything to draw.
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
            || !self
                .series
                .iter()
                .any(|s| s.values.iter().flatten().any(|&v| self.y(v).is_some()))
    }

    /// Wide enough for every category's name and bars side by side.
    fn width(&self) -> u32 {
        let n = self.categories.len().max(1);
        let longest = self.categories.iter().map(|c| c.len()).max().unwrap_or(4);
        let per = (longest * 7 + 16).max(22 * self.series.len().max(2));
        (260 + n * per).clamp(640, 2400) as u32
    }

    /// The y axis: every drawn value and sample with headroom (in log10 units when log).
    fn y_range(&self, kept: &[&Series]) -> (f64, f64) {
        let ys: Vec<f64> = kept
            .iter()
            .flat_map(|s| s.values.iter().flatten().chain(s.samples.iter().flatten()))
            .filter_map(|&v| self.y(v))
            .collect();
        let (lo, hi) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
                (a.min(y), b.max(y))
            });
        if ys.is_empty() {
            (0.0, 1.0)
        } else if self.log_y {
            (lo.floor() - 0.0, (hi + 0.3).ceil().max(lo.floor() + 1.0))
        } else {
            (0.0f64.min(lo), if hi > 0.0 { hi * 1.12 } else { 1.0 })
        }
    }

    /// The chart as an SVG document; an error only if plotters fails to draw.
    pub fn svg(&self) -> Result<String, String> {
        // A series with nothing to draw (a kernel without that counter) gets no legend.
        let drawable = |s: &&Series| s.values.iter().flatten().any(|&v| self.y(v).is_some());
        let kept: Vec<&Series> = self.series.iter().filter(drawable).collect();
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (self.width(), 380)).into_drawing_area();
            self.draw(&root, &kept).map_err(|x| x.to_string())?;
        }
        Ok(buf)
    }

    /// The whole chart on `root`: axes, each kept series' bars and sample dots, the
    /// legend and the category names.
    fn draw(&self, root: &SvgArea<'_>, kept: &[&Series]) -> DrawResult {
        let (y0, y1) = self.y_range(kept);
        root.fill(&WHITE)?;
        let mut chart = self.draw_axes(root, y0, y1)?;
        let k = kept.len().max(1) as f64;
        let w = 0.8 / k;
        for (j, s) in kept.iter().enumerate() {
            let slot = BarSlot {
                series: j,
                width: w,
            };
            self.draw_bars(&mut chart, s, slot, y0)?;
            self.draw_samples(&mut chart, s, slot)?;
        }
        draw_legend(&mut chart)?;
        self.draw_category_names(root, &chart, y0)?;
        root.present()
    }

    /// The caption, the plot area and the y axis with its labels (in values, also on a
    /// log axis); the x axis has no ticks of its own.
    fn draw_axes<'b>(&self, root: &SvgArea<'b>, y0: f64, y1: f64) -> DrawResult<SvgChart<'b>> {
        let n = self.categories.len().max(1);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y0..y1)?;
        let log = self.log_y;
        let fmt_y = move |y: &f64| {
            if log {
                label(10f64.powf(*y))
            } else {
                label(*y)
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(if log {
                ((y1 - y0) as usize + 1).min(12)
            } else {
                8
            })
            .y_label_formatter(&fmt_y)
            .y_desc(self.y_label.as_str())
            .draw()?;
        Ok(chart)
    }

    /// One series' bars, one per category it has a value for, and its legend entry.
    fn draw_bars(
        &self,
        chart: &mut SvgChart<'_>,
        s: &Series,
        slot: BarSlot,
        y0: f64,
    ) -> DrawResult {
        let color = slot.color();
        let w = slot.width;
        let bars: Vec<_> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let y = self.y((*v)?)?;
                Some(Rectangle::new(
                    [(slot.left(i), y0), (slot.left(i) + w * 0.92, y)],
                    color.mix(0.75).filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(s.name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        Ok(())
    }

    /// One series' raw samples as dots over the middle of its bars.
    fn draw_samples(&self, chart: &mut SvgChart<'_>, s: &Series, slot: BarSlot) -> DrawResult {
        let w = slot.width;
        let dots: Vec<_> = s
            .samples
            .iter()
            .enumerate()
            .flat_map(|(i, v)| {
                let x = slot.left(i) + w * 0.46;
                v.iter()
                    .filter_map(|&v| self.y(v))
                    .map(move |y| Circle::new((x, y), 2, BLACK.filled()))
                    .collect::<Vec<_>>()
            })
            .collect();
        chart.draw_series(dots)?;
        Ok(())
    }

    /// Category names under their bars, in backend pixels (plotters' tick labels would
    /// fall between categories).
    fn draw_category_names(&self, root: &SvgArea<'_>, chart: &SvgChart<'_>, y0: f64) -> DrawResult {
        let style = ("sans-serif", 12).into_font().color(&BLACK);
        for (i, c) in self.categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64, y0));
            let half = (c.len() as i32 * 6) / 2;
            root.draw(&Text::new(c.clone(), (px - half, py + 8), style.clone()))?;
        }
        Ok(())
    }
}

/// The series names with their colours, in the upper right corner.
fn draw_legend(chart: &mut SvgChart<'_>) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_bars_dots_and_labels() {
        let c = Chart {
            title: "pin time".into(),
            y_label: "ms".into(),
            log_y: true,
            categories: vec!["devdax:4K:mem".into(), "devdax:2M:mem".into()],
            series: vec![Series {
                name: "io_uring".into(),
                values: vec![Some(753.6), Some(0.31)],
                samples: vec![vec![700.0, 753.6, 800.0], vec![]],
            }],
        };
        assert!(!c.is_empty());
        let svg = c.svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("devdax:4K:mem") && svg.contains("io_uring"));
        assert_eq!(svg.matches("<circle").count(), 3);
        // Nothing positive on a log axis: nothing to draw.
        let c = Chart {
            log_y: true,
            series: vec![Series {
                name: "x".into(),
                values: vec![Some(0.0)],
                samples: vec![],
            }],
            ..c
        };
        assert!(c.is_empty());
    }
}
