//! Spreadsheet-safe exports. Every cell that leaves Nuanxin in a CSV or
//! XLSX file passes through [`neutralise`]: a cell that starts with `=`,
//! `+`, `-`, `@`, a tab or a carriage return is one a spreadsheet may run as
//! a formula (OWASP "CSV injection": a user named `=HYPERLINK(…)` must show
//! as text, not as a link), so it gets a leading `'`. [`Csv`] writes RFC 4180
//! CSV (CRLF line ends, quoting where needed) with every cell neutralised,
//! optionally behind a UTF-8 byte-order mark so that Excel opens Chinese
//! text correctly.

use std::borrow::Cow;

/// `cell` as a spreadsheet will show it as text.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// A CSV document built row by row.
pub struct Csv {
    writer: csv::Writer<Vec<u8>>,
}

impl Csv {
    /// An empty document; with `bom`, it starts with a UTF-8 byte-order
    /// mark (for Excel).
    pub fn new(bom: bool) -> Self {
        let mut buffer = Vec::new();
        if bom {
            buffer.extend_from_slice("\u{feff}".as_bytes());
        }
        let writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(buffer);
        Self { writer }
    }

    /// Appends one row, every cell neutralised.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cells: Vec<String> = cells
            .into_iter()
            .map(|c| neutralise(c.as_ref()).into_owned())
            .collect();
        // Writing into a Vec cannot fail.
        let _ = self.writer.write_record(&cells);
    }

    /// The document's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.writer.into_inner().unwrap_or_default()
    }

    /// The document as text.
    pub fn into_string(self) -> String {
        String::from_utf8(self.into_bytes()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_become_text() {
        for risky in ["=HYPERLINK(\"x\")", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(risky), format!("'{risky}"));
        }
        for safe in ["Zhang San", "张三", "", "1-2", "{\"a\":1}", " =x"] {
            assert_eq!(neutralise(safe), safe);
        }
    }

    #[test]
    fn rows_are_quoted_and_neutralised() {
        let mut csv = Csv::new(true);
        csv.row(["a", "b,c", "=1+1"]);
        csv.row(["say \"hi\"", "line\nbreak", "ok"]);
        assert_eq!(
            csv.into_string(),
            "\u{feff}a,\"b,c\",'=1+1\r\n\"say \"\"hi\"\"\",\"line\nbreak\",ok\r\n"
        );
    }
}
