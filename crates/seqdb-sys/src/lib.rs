//! Platform layer of seqdb (in progress).
