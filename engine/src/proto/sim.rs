//! TODO: stub, filled in by this issue.
