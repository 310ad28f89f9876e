//! JSON with positions. `serde_json::Value` forgets where things were, so
//! after serde_json has accepted the text, a second pass over it records the
//! line and column of every key and array element, for error messages, and
//! refuses keys given twice in one object (JSON would silently keep the last).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::error::{Problem, Seg};

/// Line and column (both from 1, the column in characters) of a key or an
/// array element, and the file it is in when it is not the document's own
/// (an HCL2 template read into a document from several files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub line: usize,
    pub column: usize,
    pub file: Option<Arc<PathBuf>>,
}

/// The positions of every key and array element of a document, by path.
#[derive(Debug, Default)]
pub(crate) struct Positions(HashMap<Vec<Seg>, Position>);

impl Positions {
    /// The position of `path`, or of its nearest ancestor that has one (a key
    /// that is missing or was added by the loader points at its object).
    pub fn find(&self, path: &[Seg]) -> Option<Position> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.0.get(&path[..n]).cloned())
    }

    pub fn insert(&mut self, path: Vec<Seg>, position: Position) {
        self.0.insert(path, position);
    }
}

/// A parse failure, with its position when known.
pub(crate) struct ParseError {
    pub position: Option<(usize, usize)>,
    pub path: Vec<Seg>,
    pub problem: Problem,
}

pub(crate) fn parse(text: &str) -> Result<(Value, Positions), ParseError> {
    // Editors on Windows like to start files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let message = match full.rsplit_once(" at line ") {
            Some((message, _)) => message.to_string(),
            None => full,
        };
        ParseError {
            position: (e.line() > 0).then(|| (e.line(), e.column())),
            path: Vec::new(),
            problem: Problem::Syntax(format!("JSON syntax error: {message}")),
        }
    })?;
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        i: 0,
        line: 1,
        line_start: 0,
        positions: Positions::default(),
    };
    scanner.value(&mut Vec::new())?;
    Ok((value, scanner.positions))
}

/// Walks text that serde_json has already accepted, so it can trust the syntax.
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    i: usize,
    line: usize,
    line_start: usize,
    positions: Positions,
}

impl Scanner<'_> {
    fn whitespace(&mut self) {
        while let Some(&b) = self.bytes.get(self.i) {
            match b {
                b'\n' => {
                    self.line += 1;
                    self.line_start = self.i + 1;
                }
                b' ' | b'\t' | b'\r' => {}
                _ => break,
            }
            self.i += 1;
        }
    }

    fn position(&self) -> Position {
        let column = self.text[self.line_start..self.i].chars().count() + 1;
        Position {
            line: self.line,
            column,
            file: None,
        }
    }

    fn value(&mut self, path: &mut Vec<Seg>) -> Result<(), ParseError> {
        self.whitespace();
        match self.bytes[self.i] {
            b'{' => self.object(path),
            b'[' => self.array(path),
            b'"' => {
                self.string();
                Ok(())
            }
            _ => {
                while self.i < self.bytes.len()
                    && !matches!(
                        self.bytes[self.i],
                        b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n'
                    )
                {
                    self.i += 1;
                }
                Ok(())
            }
        }
    }

    fn object(&mut self, path: &mut Vec<Seg>) -> Result<(), ParseError> {
        self.i += 1;
        let mut seen = std::collections::HashSet::new();
        loop {
            self.whitespace();
            if self.bytes[self.i] == b'}' {
                self.i += 1;
                return Ok(());
            }
            let position = self.position();
            let key = self.string();
            path.push(Seg::Key(key.clone()));
            // Packer's own way to comment a template is a `_comment` key,
            // which people repeat.
            if !seen.insert(key.clone()) && !key.starts_with('_') {
                return Err(ParseError {
                    position: Some((position.line, position.column)),
                    path: path.clone(),
                    problem: Problem::DuplicateKey,
                });
            }
            self.positions.0.insert(path.clone(), position);
            self.whitespace();
            self.i += 1; // ':'
            self.value(path)?;
            path.pop();
            self.whitespace();
            if self.bytes[self.i] == b',' {
                self.i += 1;
            }
        }
    }

    fn array(&mut self, path: &mut Vec<Seg>) -> Result<(), ParseError> {
        self.i += 1;
        let mut index = 0;
        loop {
            self.whitespace();
            if self.bytes[self.i] == b']' {
                self.i += 1;
                return Ok(());
            }
            path.push(Seg::Index(index));
            self.positions.0.insert(path.clone(), self.position());
            self.value(path)?;
            path.pop();
            index += 1;
            self.whitespace();
            if self.bytes[self.i] == b',' {
                self.i += 1;
            }
        }
    }

    /// Reads a string token and decodes its escapes.
    fn string(&mut self) -> String {
        let start = self.i;
        self.i += 1;
        while self.bytes[self.i] != b'"' {
            self.i += if self.bytes[self.i] == b'\\' { 2 } else { 1 };
        }
        self.i += 1;
        serde_json::from_str(&self.text[start..self.i]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Seg {
        Seg::Key(k.into())
    }

    #[test]
    fn records_keys_and_elements() {
        let text = "{\n  \"builders\": [\n    {\"type\": \"osc-bsu\",\n     \"omi_n\\u0061me\": \"x\"}\n  ]\n}";
        let (_, p) = parse(text).unwrap_or_else(|_| panic!("parses"));
        let p = |path: &[Seg]| p.find(path).map(|p| (p.line, p.column));
        assert_eq!(p(&[key("builders")]), Some((2, 3)));
        assert_eq!(p(&[key("builders"), Seg::Index(0)]), Some((3, 5)));
        assert_eq!(
            p(&[key("builders"), Seg::Index(0), key("omi_name")]),
            Some((4, 6))
        );
        // A missing key points at its object.
        assert_eq!(
            p(&[key("builders"), Seg::Index(0), key("vm_type")]),
            Some((3, 5))
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let Err(e) = parse("{\n  \"a\": 1,\n  \"b\" 2\n}") else {
            panic!("accepted")
        };
        assert_eq!(e.position, Some((3, 7)));
        assert!(
            e.problem.to_string().contains("expected `:`"),
            "{}",
            e.problem
        );
    }

    #[test]
    fn duplicate_keys_are_refused_except_comments() {
        let Err(e) = parse(r#"{"a": 1, "b": {"c": 1, "c": 2}}"#) else {
            panic!("accepted")
        };
        assert_eq!(e.path, vec![key("b"), key("c")]);
        assert_eq!(e.position, Some((1, 24)));
        assert!(parse(r#"{"_comment": 1, "_comment": 2}"#).is_ok());
    }
}
