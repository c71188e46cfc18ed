//! Why a command failed, as one line for standard error.

use std::error::Error;
use std::fmt;

/// A command's failure: one sentence naming what went wrong and its cause.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<seqdb::Error> for Failure {
    fn from(error: seqdb::Error) -> Self {
        Failure(chain(&error))
    }
}

/// An error and its causes on one line, leaving out causes its message already shows.
pub fn chain(error: &dyn Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// Say what was being done when an error happened.
pub trait Context<T> {
    /// Wrap the error as "`what`: cause".
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T, E: Error> Context<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|error| Failure(format!("{}: {}", what(), chain(&error))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer {
        message: &'static str,
        cause: std::io::Error,
    }

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.message)
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.cause)
        }
    }

    fn fail(message: &'static str) -> Result<(), Outer> {
        Err(Outer {
            message,
            cause: std::io::Error::other("disk on fire"),
        })
    }

    #[test]
    fn chain_shows_each_new_cause_once() {
        let failure = fail("cannot sync").context(|| "writing x".to_owned());
        assert_eq!(
            failure.unwrap_err().to_string(),
            "writing x: cannot sync: disk on fire"
        );
        let failure = fail("cannot sync: disk on fire").context(|| "writing x".to_owned());
        assert_eq!(
            failure.unwrap_err().to_string(),
            "writing x: cannot sync: disk on fire"
        );
    }
}
