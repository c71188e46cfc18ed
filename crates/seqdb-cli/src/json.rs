//! Just enough JSON output for `ls --json`.

use std::fmt::Write;

/// `text` as a JSON string literal, quotes included.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON object with the given members, in order; values are JSON already.
pub fn object(members: &[(&str, String)]) -> String {
    let body: Vec<String> = members
        .iter()
        .map(|(key, value)| format!("{}: {value}", string(key)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("plain"), r#""plain""#);
        assert_eq!(string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(string("line\nnext\ttab\u{1}"), r#""line\nnext\ttab\u0001""#);
        assert_eq!(string("naïve €"), "\"naïve €\"");
    }

    #[test]
    fn objects_keep_member_order() {
        let text = object(&[("name", string("x")), ("len", 5.to_string())]);
        assert_eq!(text, r#"{"name": "x", "len": 5}"#);
    }
}
