//! Configuration errors. Every message names the file (when there is one), the key, and the
//! reason, e.g. `ringwire.toml: p2p.max_num_inbound_peers: must be at most 10000`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::duration;

use super::node_key::NodeKeyError;

/// One rule a configuration value breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The key, as `section.key` (for example `p2p.max_num_inbound_peers`).
    pub key: String,
    /// Why the value is refused.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Why a configuration could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system reported.
        source: std::io::Error,
    },
    /// The text is not valid TOML, has an unknown key, or a value of the wrong type or form.
    #[error("{}", parse_message(file.as_ref(), *line, key.as_deref(), message))]
    Parse {
        /// The file, when the text came from one.
        file: Option<PathBuf>,
        /// The 1-based line of the offending text, when known.
        line: Option<usize>,
        /// The key, as `section.key`, when known.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Values that parse but break a rule (a range, a relation between two keys).
    #[error("{}", invalid_message(file.as_ref(), problems))]
    Invalid {
        /// The file, when the configuration came from one.
        file: Option<PathBuf>,
        /// Every rule broken, in schema order.
        problems: Vec<Problem>,
    },
    /// The node key file could not be read or written.
    #[error(transparent)]
    NodeKey(#[from] NodeKeyError),
}

impl ConfigError {
    /// The keys this error is about (empty for I/O errors).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            ConfigError::Parse { key: Some(k), .. } => vec![k.as_str()],
            ConfigError::Invalid { problems, .. } => {
                problems.iter().map(|p| p.key.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Attaches the file name to a parse or validation error that has none.
    pub(crate) fn in_file(mut self, path: impl Into<PathBuf>) -> Self {
        match &mut self {
            ConfigError::Parse { file, .. } | ConfigError::Invalid { file, .. }
                if file.is_none() =>
            {
                *file = Some(path.into());
            }
            _ => {}
        }
        self
    }
}

fn prefix(file: Option<&PathBuf>, line: Option<usize>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("{}:{l}: ", f.display()),
        (Some(f), None) => format!("{}: ", f.display()),
        (None, Some(l)) => format!("line {l}: "),
        (None, None) => String::new(),
    }
}

fn parse_message(
    file: Option<&PathBuf>,
    line: Option<usize>,
    key: Option<&str>,
    message: &str,
) -> String {
    let mut out = prefix(file, line);
    if let Some(key) = key {
        out.push_str(key);
        out.push_str(": ");
    }
    out.push_str(message);
    out
}

fn invalid_message(file: Option<&PathBuf>, problems: &[Problem]) -> String {
    let prefix = prefix(file, None);
    problems
        .iter()
        .map(|p| format!("{prefix}{p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collects the problems of one validation pass.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<Problem>);

impl Problems {
    /// Records that `section.key` breaks a rule.
    pub(crate) fn push(&mut self, section: &str, key: &str, reason: impl Into<String>) {
        self.0.push(Problem {
            key: format!("{section}.{key}"),
            reason: reason.into(),
        });
    }

    /// Checks `value <= max`.
    pub(crate) fn at_most<T: PartialOrd + fmt::Display>(
        &mut self,
        section: &str,
        key: &str,
        value: T,
        max: T,
    ) {
        if value > max {
            self.push(section, key, format!("must be at most {max}, got {value}"));
        }
    }

    /// Checks `min <= value <= max`.
    pub(crate) fn within<T: PartialOrd + fmt::Display>(
        &mut self,
        section: &str,
        key: &str,
        value: T,
        min: T,
        max: T,
    ) {
        if value < min || value > max {
            self.push(
                section,
                key,
                format!("must be from {min} to {max}, got {value}"),
            );
        }
    }

    /// Checks a duration: not above `max`, and not zero when `positive`.
    pub(crate) fn duration(
        &mut self,
        section: &str,
        key: &str,
        value: Duration,
        positive: bool,
        max: Duration,
    ) {
        if positive && value.is_zero() {
            self.push(section, key, "must be greater than zero");
        } else if value > max {
            self.push(
                section,
                key,
                format!(
                    "must be at most {}, got {}",
                    duration::format(max),
                    duration::format(value)
                ),
            );
        }
    }

    /// Turns the collected problems into a result.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                file: None,
                problems: self.0,
            })
        }
    }
}
