//! Rendering, apart from the schema, the checks and the statistics: the HTML and Markdown
//! report (`report`), SVG charts (`chart`), a comparison as text/Markdown/KTAP/JUnit
//! (`comparison`) and KCIDB submissions (`kcidb`). Each suite's own text and charts are its
//! `SuiteReport`'s.

pub mod chart;
pub mod comparison;
pub mod kcidb;
pub mod report;
pub mod text_table;
