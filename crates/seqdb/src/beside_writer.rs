//! Reading the log as a live writer leaves it: what a read-only open (and `check`) makes
//! of the files while a read-write handle appends to them.
//!
//! The log is read first, then the data file's header, so the writer can only have moved
//! ahead between the two. Three things then look like damage but are the writer at work:
//!
//! - the record after the last complete one may be half written (a torn tail: already
//!   harmless), and records the writer appended while the log was being read may follow
//!   it: they are commits newer than the one this open keeps, not commits lost;
//! - the data file's header may name any newer commit, not only the next one;
//! - one header slot may be torn, because the writer is writing it.
//!
//! So beside a writer the open keeps the last complete record it read, and ignores what
//! follows it and how far ahead the header is. What it still refuses: a record whose
//! checksum matches but which breaks the rules, a header older than the log, a header
//! or a metadata file of another database. Those no writer leaves.

use crate::data_header::DataHeader;
use crate::log_read::RecordEnd;
use crate::replay::LogScan;

/// Make `scan` and `header`, read beside a live writer, say what a quiet database with
/// the same last commit would say.
pub(crate) fn settle(scan: &mut LogScan, header: &mut DataHeader) {
    scan.after.records.clear();
    scan.after.unexamined = None;
    if !scan.end.reason.is_checksummed() {
        // The writer's record in progress, or nothing yet.
        scan.end.reason = RecordEnd::EndOfFile;
        scan.file_len = scan.end.offset;
    }
    if header.generation >= scan.state.generation {
        header.generation = scan.state.generation;
        header.damaged_slot = None;
    }
}
