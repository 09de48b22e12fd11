//! Writing a configuration as commented TOML (`ringwire config default`): every key, in schema
//! order, under its documentation.

use std::fmt::Write as _;

use serde::Serialize;

/// The documentation of one key.
#[derive(Debug)]
pub(crate) struct FieldDoc {
    /// The key.
    pub(crate) key: &'static str,
    /// Its doc comment, one entry per line (each with rustdoc's leading space).
    pub(crate) doc: &'static [&'static str],
}

/// A `[section]` of the schema (implemented by `section!`).
pub(crate) trait Section: Serialize + Default {
    /// The table name.
    const NAME: &'static str;
    /// The section's doc comment.
    const DOC: &'static [&'static str];
    /// Every key, in schema order.
    const FIELDS: &'static [FieldDoc];
}

/// The text at the top of a rendered file.
const HEADER: &str = "\
# ringwire configuration.
#
# Every key is optional: a missing key takes the value shown here. Unknown keys are errors.
# Durations are written like \"10s\", \"100ms\" or \"1m30s\"; sizes are in bytes. Relative paths
# are resolved against node.home.
";

/// Appends `[section]` with every key under its doc comment.
pub(crate) fn section<S: Section>(out: &mut String, value: &S) {
    let table = match toml::Table::try_from(value) {
        Ok(table) => table,
        // Every section serializes to a table (a test checks each); never reached.
        Err(e) => {
            let _ = writeln!(out, "# [{}] could not be written: {e}", S::NAME);
            return;
        }
    };
    out.push('\n');
    for line in S::DOC {
        comment(out, line);
    }
    let _ = writeln!(out, "[{}]", S::NAME);
    for field in S::FIELDS {
        out.push('\n');
        for line in field.doc {
            comment(out, line);
        }
        match table.get(field.key) {
            Some(v) => {
                let _ = writeln!(out, "{} = {v}", field.key);
            }
            None => {
                let _ = writeln!(out, "# {} is not set", field.key);
            }
        }
    }
}

/// Writes the header comment.
pub(crate) fn header(out: &mut String) {
    out.push_str(HEADER);
}

fn comment(out: &mut String, line: &str) {
    // Rustdoc markup (code spans) reads as noise in a config file.
    let line = line.strip_prefix(' ').unwrap_or(line).replace('`', "");
    if line.is_empty() {
        out.push_str("#\n");
    } else {
        let _ = writeln!(out, "# {line}");
    }
}
