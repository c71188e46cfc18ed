//! Pure region allocator of seqdb (in progress).
#![forbid(unsafe_code)]
