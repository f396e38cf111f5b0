//! Columns aligned to their widest cell; the header bold on a terminal.

use super::Ui;

pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: Vec<&'static str>) -> Table {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    /// Cells are made printable here: any may come from whoever pushed.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| match super::format::printable(&c) {
                    // Already printable (nearly always): no copy.
                    std::borrow::Cow::Borrowed(_) => c,
                    std::borrow::Cow::Owned(escaped) => escaped,
                })
                .collect(),
        );
    }

    pub fn print(&self, ui: &Ui) {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .chain([self.header[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let line = |cells: Vec<String>| {
            let last = cells.len().saturating_sub(1);
            cells
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == last {
                        c
                    } else {
                        let pad = widths[i].saturating_sub(c.chars().count());
                        format!("{c}{}", " ".repeat(pad + 2))
                    }
                })
                .collect::<String>()
        };
        let header = line(self.header.iter().map(|h| h.to_string()).collect());
        crate::outln!("{}", ui.bold(header.trim_end()));
        for r in &self.rows {
            crate::outln!("{}", line(r.clone()).trim_end());
        }
    }
}
