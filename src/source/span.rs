//! Positions in source files: 1-based line and column (in characters) plus the
//! byte offset that renderers need.

use serde::Serialize;

/// A position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
    /// 0-based byte offset into the file.
    pub byte: usize,
}

/// A range in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Span {
    /// First character.
    pub start: Pos,
    /// One past the last character.
    pub end: Pos,
}

impl Span {
    /// A span covering one position.
    pub fn point(pos: Pos) -> Span {
        Span {
            start: pos,
            end: pos,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end.byte.saturating_sub(self.start.byte)
    }

    /// True when the span covers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Converts between (line, character column) and byte offsets for one text.
#[derive(Debug, Clone)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes the line starts of `text`.
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { line_starts }
    }

    /// The position of 1-based `line` and 0-based character column `col0`, clamped
    /// to the text.
    pub fn pos(&self, text: &str, line: usize, col0: usize) -> Pos {
        let line = line.clamp(1, self.line_starts.len());
        let start = self.line_starts[line - 1];
        let end = self.line_starts.get(line).copied().unwrap_or(text.len());
        let line_text = text.get(start..end).unwrap_or("");
        let byte_in_line = line_text
            .char_indices()
            .nth(col0)
            .map_or(line_text.len(), |(i, _)| i);
        Pos {
            line: line as u32,
            column: col0 as u32 + 1,
            byte: start + byte_in_line,
        }
    }

    /// The position of a byte offset.
    pub fn pos_of_byte(&self, text: &str, byte: usize) -> Pos {
        let byte = byte.min(text.len());
        let line0 = match self.line_starts.binary_search(&byte) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line0];
        let column = text
            .get(start..byte)
            .map_or(byte - start, |s| s.chars().count());
        Pos {
            line: line0 as u32 + 1,
            column: column as u32 + 1,
            byte,
        }
    }

    /// Number of lines.
    pub fn lines(&self) -> usize {
        self.line_starts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_and_bytes_count_bytes() {
        let text = "a: 1\nnome: \"São Paulo\" x\n";
        let index = LineIndex::new(text);
        // `x` is character 19 (0-based 18) of line 2.
        let pos = index.pos(text, 2, 18);
        assert_eq!(pos.line, 2);
        assert_eq!(pos.column, 19);
        assert_eq!(&text[pos.byte..pos.byte + 1], "x");
        assert_eq!(index.pos_of_byte(text, pos.byte), pos);
    }

    #[test]
    fn positions_clamp_to_the_text() {
        let text = "ab";
        let index = LineIndex::new(text);
        assert_eq!(index.pos(text, 9, 9).byte, 2);
        assert_eq!(index.pos_of_byte(text, 99).byte, 2);
    }
}
