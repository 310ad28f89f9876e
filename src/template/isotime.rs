//! `{{isotime "LAYOUT"}}` formats with Go's reference-time layouts
//! (`2006-01-02T15:04:05Z07:00`), which templates written for Packer use.
//! Times are UTC, as Packer's `isotime`.

use time::OffsetDateTime;

/// Packer's default `isotime` layout.
pub(crate) const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

/// Formats `t` (taken as UTC) with a Go layout. Tokens are recognised as Go
/// recognises them, left to right; everything else is copied.
pub(crate) fn format(layout: &str, t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let mut out = String::new();
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        let (text, len) = token(rest, t).unwrap_or_else(|| (c.to_string(), c.len_utf8()));
        out.push_str(&text);
        rest = &rest[len..];
    }
    out
}

/// The token at the start of `s`, formatted, and its length in the layout.
fn token(s: &str, t: OffsetDateTime) -> Option<(String, usize)> {
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    let month = t.month().to_string();
    let weekday = t.weekday().to_string();
    let pm = if t.hour() >= 12 { "PM" } else { "AM" };
    let table: Vec<(&str, String)> = vec![
        ("January", month.clone()),
        ("Jan", month[..3].to_string()),
        ("Monday", weekday.clone()),
        ("Mon", weekday[..3].to_string()),
        ("MST", "UTC".into()),
        ("002", format!("{:03}", t.ordinal())),
        ("__2", format!("{:>3}", t.ordinal())),
        ("01", format!("{:02}", u8::from(t.month()))),
        ("02", format!("{:02}", t.day())),
        ("03", format!("{hour12:02}")),
        ("04", format!("{:02}", t.minute())),
        ("05", format!("{:02}", t.second())),
        ("06", format!("{:02}", t.year().rem_euclid(100))),
        ("15", format!("{:02}", t.hour())),
        ("2006", format!("{:04}", t.year())),
        ("_2006", format!("_{:04}", t.year())),
        ("_2", format!("{:>2}", t.day())),
        ("1", u8::from(t.month()).to_string()),
        ("2", t.day().to_string()),
        ("3", hour12.to_string()),
        ("4", t.minute().to_string()),
        ("5", t.second().to_string()),
        ("PM", pm.into()),
        ("pm", pm.to_lowercase()),
        ("Z07:00:00", "Z".into()),
        ("Z070000", "Z".into()),
        ("Z07:00", "Z".into()),
        ("Z0700", "Z".into()),
        ("Z07", "Z".into()),
        ("-07:00:00", "+00:00:00".into()),
        ("-070000", "+000000".into()),
        ("-07:00", "+00:00".into()),
        ("-0700", "+0000".into()),
        ("-07", "+00".into()),
    ];
    match table.into_iter().find(|(tok, _)| s.starts_with(tok)) {
        Some((tok, text)) => Some((text, tok.len())),
        None => fraction(s, t),
    }
}

/// `.000` (fixed digits) or `.999` (trailing zeros dropped) after seconds,
/// `,` also accepted as the separator.
fn fraction(s: &str, t: OffsetDateTime) -> Option<(String, usize)> {
    let mut chars = s.chars();
    let separator = chars.next().filter(|c| *c == '.' || *c == ',')?;
    let digit = chars.next().filter(|c| *c == '0' || *c == '9')?;
    let count = 1 + s[2..].chars().take_while(|c| *c == digit).count();
    let len = 1 + count;
    if s[len..].starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let nanos = format!("{:09}", t.nanosecond());
    let mut digits = nanos[..count.min(9)].to_string();
    if digit == '9' {
        digits.truncate(digits.trim_end_matches('0').len());
        if digits.is_empty() {
            return Some((String::new(), len));
        }
    }
    Some((format!("{separator}{digits}"), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layouts() {
        let t = time::macros::datetime!(2024-03-05 17:08:09.120 UTC);
        let cases = [
            (RFC3339, "2024-03-05T17:08:09Z"),
            ("2006-01-02", "2024-03-05"),
            ("20060102150405", "20240305170809"),
            ("Jan _2 06 3:4:5 PM", "Mar  5 24 5:8:9 PM"),
            ("Monday January 2 2006", "Tuesday March 5 2024"),
            (
                "Mon Jan 02 15:04:05 MST 2006",
                "Tue Mar 05 17:08:09 UTC 2024",
            ),
            ("15:04:05.000 -0700", "17:08:09.120 +0000"),
            ("05.999|05.9|05,00", "09.12|09.1|09,12"),
            ("day 002 of 2006", "day 065 of 2024"),
            ("03pm -07:00", "05pm +00:00"),
            ("plain text: Y", "plain text: Y"),
        ];
        for (layout, want) in cases {
            assert_eq!(format(layout, t), want, "{layout}");
        }
    }
}
