//! `osci fmt`: HCL2 files in the canonical style `packer fmt` writes: two
//! spaces per level of nesting, one space around `=`, the `=` of
//! consecutive one-line attributes aligned, no trailing blanks, one newline
//! at the end. Comments, heredocs and the text of strings are kept as they
//! are.
//!
//! It works on lines, with a lexer that knows strings, heredocs and
//! comments, so it never needs to rebuild the file from a syntax tree; the
//! result must parse to the same body as the input, or nothing is written.

use std::path::{Path, PathBuf};

/// A file `fmt` could not format: it does not parse, or formatting it would
/// change what it means.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct FmtError {
    pub path: PathBuf,
    pub message: String,
}

/// `text` in the canonical style.
pub fn format(path: &Path, text: &str) -> Result<String, FmtError> {
    let error = |message: String| FmtError {
        path: path.to_path_buf(),
        message,
    };
    let before: hcl::Body = text
        .parse()
        .map_err(|e: hcl::Error| error(format!("does not parse: {e}")))?;
    let lines = scan(text);
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for line in &lines {
        out.push(match line.kind {
            Kind::Verbatim => line.text.clone(),
            Kind::Blank => String::new(),
            Kind::Code => {
                let indent = "  ".repeat(line.depth);
                let body = match line.equals {
                    Some(at) => {
                        let (key, value) = line.text.split_at(at);
                        format!("{} = {}", key.trim_end(), value[1..].trim_start())
                    }
                    None => line.text.clone(),
                };
                format!("{indent}{}", body.trim_end())
            }
        });
    }
    align(&lines, &mut out);
    // Blank lines: at most one in a row, none at the start or the end.
    let mut result = String::with_capacity(text.len());
    let mut blank = true;
    for (line, info) in out.iter().zip(&lines) {
        let is_blank = info.kind == Kind::Blank;
        if is_blank && blank {
            continue;
        }
        blank = is_blank;
        result.push_str(line);
        result.push('\n');
    }
    while result.ends_with("\n\n") {
        result.pop();
    }
    if result.trim().is_empty() {
        result.clear();
    }
    let after: hcl::Body = result.parse().map_err(|e: hcl::Error| {
        error(format!("formatting would break it ({e}): left as it is"))
    })?;
    if after != before {
        return Err(error(
            "formatting would change what it means: left as it is".into(),
        ));
    }
    Ok(result)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Code (and comments), re-indented.
    Code,
    Blank,
    /// Inside a heredoc or a multi-line string: kept byte for byte.
    Verbatim,
}

#[derive(Debug)]
struct Line {
    kind: Kind,
    /// The line without its leading blanks (all of it when verbatim).
    text: String,
    depth: usize,
    /// The byte offset in `text` of an attribute's `=`.
    equals: Option<usize>,
    /// Whether the line ends inside brackets it opened (its value goes on).
    opens: bool,
}

/// Splits `text` into lines, each with its nesting depth, and finds the
/// `=` of attribute lines.
fn scan(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut depth: usize = 0;
    let mut heredoc: Option<String> = None;
    let mut in_comment = false;
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let plain = |kind: Kind, text: &str| Line {
            kind,
            text: text.to_string(),
            depth,
            equals: None,
            opens: false,
        };
        if let Some(end) = &heredoc {
            if raw.trim() == end {
                heredoc = None;
            }
            lines.push(plain(Kind::Verbatim, raw));
            continue;
        }
        let trimmed = raw.trim_start();
        if in_comment {
            in_comment = !trimmed.contains("*/");
            lines.push(plain(Kind::Verbatim, raw));
            continue;
        }
        if trimmed.is_empty() {
            lines.push(plain(Kind::Blank, ""));
            continue;
        }
        let lexed = lex_line(trimmed);
        // A line that starts by closing brackets sits at the depth they
        // close to.
        let line_depth = depth.saturating_sub(lexed.leading_closes);
        let net = depth as isize + lexed.opens as isize - lexed.closes as isize;
        depth = net.max(0) as usize;
        heredoc = lexed.heredoc;
        in_comment = lexed.open_comment;
        lines.push(Line {
            kind: Kind::Code,
            text: trimmed.to_string(),
            depth: line_depth,
            equals: lexed.equals,
            opens: lexed.opens > lexed.closes,
        });
    }
    // A trailing newline leaves an empty last piece.
    if lines.last().is_some_and(|l| l.kind == Kind::Blank) {
        lines.pop();
    }
    lines
}

struct Lexed {
    opens: usize,
    closes: usize,
    /// Closing brackets before anything else on the line.
    leading_closes: usize,
    equals: Option<usize>,
    heredoc: Option<String>,
    open_comment: bool,
}

/// What matters of one line of code: brackets outside strings and
/// comments, an attribute's `=`, a heredoc or block comment it opens.
fn lex_line(line: &str) -> Lexed {
    let bytes = line.as_bytes();
    let mut out = Lexed {
        opens: 0,
        closes: 0,
        leading_closes: 0,
        equals: None,
        heredoc: None,
        open_comment: false,
    };
    let mut i = 0;
    let mut seen_code = false;
    // An attribute line: a name (or a quoted key, in an object), then `=`
    // (not `==`, `=>`).
    let ident_end = if bytes.first() == Some(&b'"') {
        skip_string(bytes, 0)
    } else if bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        bytes
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            .unwrap_or(bytes.len())
    } else {
        0
    };
    if ident_end > 0 {
        let rest = &line[ident_end..];
        let spaces = rest.len() - rest.trim_start().len();
        let at = ident_end + spaces;
        if bytes.get(at) == Some(&b'=') && !matches!(bytes.get(at + 1), Some(b'=') | Some(b'>')) {
            out.equals = Some(at);
        }
    }
    while i < bytes.len() {
        match bytes[i] {
            b'#' => break,
            b'/' if bytes.get(i + 1) == Some(&b'/') => break,
            b'/' if bytes.get(i + 1) == Some(&b'*') => match line[i + 2..].find("*/") {
                Some(end) => i += end + 4,
                None => {
                    out.open_comment = true;
                    break;
                }
            },
            b'"' => {
                seen_code = true;
                i = skip_string(bytes, i);
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                let rest = &line[i + 2..];
                let rest = rest.strip_prefix('-').unwrap_or(rest);
                let marker: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !marker.is_empty() {
                    out.heredoc = Some(marker);
                    break;
                }
                i += 2;
            }
            b'{' | b'[' | b'(' => {
                seen_code = true;
                out.opens += 1;
                i += 1;
            }
            b'}' | b']' | b')' => {
                if !seen_code && out.opens == 0 {
                    out.leading_closes += 1;
                } else {
                    seen_code = true;
                }
                if out.opens > 0 {
                    out.opens -= 1;
                } else {
                    out.closes += 1;
                }
                i += 1;
            }
            b' ' | b'\t' => i += 1,
            _ => {
                seen_code = true;
                i += 1;
            }
        }
    }
    out
}

/// The index just past the string that starts at `start` (a `"`), with
/// its `${…}` and `%{…}` (which may hold strings of their own).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    let mut depth = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => {
                if depth > 0 || bytes.get(i.wrapping_sub(1)) != Some(&bytes[i]) {
                    depth += 1;
                }
                i += 2;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                i += 1;
            }
            b'"' if depth > 0 => i = skip_string(bytes, i),
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Aligns the `=` of runs of consecutive one-line attributes at one depth.
fn align(lines: &[Line], out: &mut [String]) {
    let mut i = 0;
    while i < lines.len() {
        let single = |l: &Line| l.kind == Kind::Code && l.equals.is_some() && !l.opens;
        if !single(&lines[i]) {
            i += 1;
            continue;
        }
        let depth = lines[i].depth;
        let mut end = i;
        while end + 1 < lines.len() && single(&lines[end + 1]) && lines[end + 1].depth == depth {
            end += 1;
        }
        let width = (i..=end)
            .map(|j| out[j].find(" = ").unwrap_or(0))
            .max()
            .unwrap_or(0);
        for line in &mut out[i..=end] {
            if let Some(at) = line.find(" = ") {
                let pad = " ".repeat(width - at);
                line.insert_str(at, &pad);
            }
        }
        i = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        format(Path::new("t.pkr.hcl"), text).unwrap()
    }

    #[test]
    fn formats_as_packer_does() {
        let text = "source \"outscale-bsu\" \"web\" {\nvm_type=\"tinav5\"\n      omi_name   =   \"golden-${var.v}\" # the name\n\n\n  tags = {\n  Name = \"web\"\n    team=\"platform\"\n  }\n  launch_block_device_mappings {\n device_name = \"/dev/sda1\"\n  }\n}\n\n\n";
        assert_eq!(
            fmt(text),
            "source \"outscale-bsu\" \"web\" {\n  vm_type  = \"tinav5\"\n  omi_name = \"golden-${var.v}\" # the name\n\n  tags = {\n    Name = \"web\"\n    team = \"platform\"\n  }\n  launch_block_device_mappings {\n    device_name = \"/dev/sda1\"\n  }\n}\n"
        );
        // Formatting is stable.
        let once = fmt(text);
        assert_eq!(fmt(&once), once);
    }

    #[test]
    fn heredocs_and_strings_are_kept() {
        let text = "build {\nprovisioner \"shell\" {\ninline = [<<EOF\n  keep   this = as is\n{\nEOF\n, \"a = {b\"]\n}\n}\n";
        let out = fmt(text);
        assert!(out.contains("\n  keep   this = as is\n{\nEOF\n"), "{out}");
        assert!(out.contains("\"a = {b\""), "{out}");
    }

    #[test]
    fn what_does_not_parse_is_refused() {
        assert!(format(Path::new("t.pkr.hcl"), "source {").is_err());
    }
}
