//! Writing a command's result to standard output: as text, or as JSON for `--json`.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::failure::{Context, Failure};

/// Write `text` to standard output; a closed pipe (`| head`) is not an error.
pub fn print(text: &str) -> Result<ExitCode, Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        result => result
            .map(|()| ExitCode::SUCCESS)
            .context(|| "cannot write to standard output".to_owned()),
    }
}

/// `value` as indented JSON and a newline.
pub fn json_text<T: Serialize>(value: &T) -> Result<String, Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .context(|| "cannot write the report as JSON".to_owned())?;
    text.push('\n');
    Ok(text)
}

/// Write `value` to standard output as indented JSON.
pub fn print_json<T: Serialize>(value: &T) -> Result<ExitCode, Failure> {
    print(&json_text(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row<'a> {
        name: &'a str,
        len: u64,
    }

    #[test]
    fn awkward_strings_survive_a_round_trip() {
        let name = "quote \" backslash \\ line\nbreak tab\t bell\u{7} naïve € 漢字";
        let text = json_text(&[Row { name, len: 5 }]).unwrap();
        assert!(text.ends_with("]\n"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back[0]["name"], name);
        assert_eq!(back[0]["len"], 5);
    }
}
