//! seqdb public API (in progress).
#![forbid(unsafe_code)]
