//! Hostile and malformed input: every one aborts with an error that names it.
