//! Elastic tabstops, as Go's `text/tabwriter` computes them: kubectl prints every table
//! and every `describe` through one, so reproducing its column rules is what makes
//! rkctl's output line up exactly like kubectl's.
//!
//! Text is lines of cells; a cell ends with `\t`, and the text after a line's last tab
//! is not part of any column. A *column block* is a run of consecutive lines that all
//! have a tab-terminated cell in that column; the block's width is the widest cell plus
//! `padding`, but at least `minwidth`. A line with fewer cells ends the block, which is
//! why a heading like `Pod Template:` (no tab) starts a fresh alignment below it.
//!
//! With [`TabWriter::remember_widths`] a column never gets narrower than it was at an
//! earlier [`flush`](TabWriter::flush) (kubectl's fork of tabwriter has this flag, so
//! that the rows of `get -w` stay under their header).

/// Buffers text and aligns it on [`flush`](TabWriter::flush).
#[derive(Debug, Clone)]
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    remember: bool,
    /// Widest width seen so far per column index (only with `remember`).
    max_widths: Vec<usize>,
    buf: String,
}

impl TabWriter {
    /// kubectl's table settings (`get`, `config get-contexts`): min width 6, padding 3.
    pub fn for_tables() -> Self {
        Self::new(6, 3)
    }

    /// kubectl's `describe` settings: min width 0, padding 2.
    pub fn for_describe() -> Self {
        Self::new(0, 2)
    }

    pub fn new(minwidth: usize, padding: usize) -> Self {
        Self { minwidth, padding, remember: false, max_widths: Vec::new(), buf: String::new() }
    }

    /// Keep column widths across flushes; they may grow but never shrink.
    pub fn remember_widths(mut self) -> Self {
        self.remember = true;
        self
    }

    pub fn write(&mut self, text: &str) {
        self.buf.push_str(text);
    }

    /// Aligns everything written since the last flush and returns it.
    pub fn flush(&mut self) -> String {
        let text = std::mem::take(&mut self.buf);
        if text.is_empty() {
            return text;
        }
        let ends_with_newline = text.ends_with('\n');
        let body = if ends_with_newline { &text[..text.len() - 1] } else { &text[..] };
        let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
        let mut out = String::with_capacity(text.len() * 2);
        let mut widths = Vec::new();
        self.format(&lines, 0, lines.len(), &mut widths, &mut out);
        if !ends_with_newline {
            out.pop();
        }
        out
    }

    /// Go's `Writer.format`: finds the column blocks of column `widths.len()` within
    /// `line0..line1`, and recurses into each for the columns to its right.
    fn format(&mut self, lines: &[Vec<&str>], line0: usize, line1: usize, widths: &mut Vec<usize>, out: &mut String) {
        let column = widths.len();
        let mut line0 = line0;
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // A block of column `column` starts at `this`.
            Self::write_lines(lines, line0, this, widths, out);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(cell_width(lines[this][column]) + self.padding);
                this += 1;
            }
            if self.remember {
                if self.max_widths.len() <= column {
                    self.max_widths.resize(column + 1, 0);
                }
                width = width.max(self.max_widths[column]);
                self.max_widths[column] = width;
            }
            widths.push(width);
            self.format(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        Self::write_lines(lines, line0, line1, widths, out);
    }

    fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
        for line in &lines[from..to] {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if j + 1 < line.len() && j < widths.len() {
                    let pad = widths[j].saturating_sub(cell_width(cell));
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
    }
}

/// Width on screen, counted in characters as Go counts runes.
fn cell_width(cell: &str) -> usize {
    cell.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_get_three_spaces_and_a_minimum_of_six() {
        let mut w = TabWriter::for_tables();
        w.write("NAME\tREADY\tUP-TO-DATE\tAGE\n");
        w.write("web\t0/2\t0\t11s\n");
        assert_eq!(w.flush(), "NAME   READY   UP-TO-DATE   AGE\nweb    0/2     0            11s\n");
        // Without a header the short cells are padded to the minimum width of 6.
        let mut w = TabWriter::for_tables();
        w.write("web\t0/2\t0\t0\t2m11s\n");
        assert_eq!(w.flush(), "web   0/2   0     0     2m11s\n");
    }

    #[test]
    fn a_line_without_tabs_ends_the_block() {
        // kubectl describe: "Pod Template:" has no tab, so the lines below it align
        // among themselves, not with "Name:".
        let mut w = TabWriter::for_describe();
        w.write("Name:\tweb\nReplicas:\t2\nPod Template:\n  Labels:\tapp=web\n");
        assert_eq!(w.flush(), "Name:      web\nReplicas:  2\nPod Template:\n  Labels:  app=web\n");
    }

    #[test]
    fn remembered_widths_only_grow() {
        let mut w = TabWriter::for_tables().remember_widths();
        w.write("NAME\tAGE\nlong-name-here\t1s\n");
        let first = w.flush();
        assert_eq!(first, "NAME             AGE\nlong-name-here   1s\n");
        w.write("a\t2s\n");
        assert_eq!(w.flush(), "a                2s\n");
    }

    #[test]
    fn text_without_final_newline_is_kept_as_is() {
        let mut w = TabWriter::new(0, 1);
        w.write("a\tb\nccc\td");
        assert_eq!(w.flush(), "a   b\nccc d");
    }
}
