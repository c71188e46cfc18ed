//! The writer's side of the readers file: space freed by a commit is kept until no
//! reader process may view it.
//!
//! Within the process, a region's old extent is held while snapshots view it
//! (`retired.rs`). Other processes' read-only handles view whole generations instead:
//! a handle that opened at generation *g* reads the regions as commit *g* placed them,
//! so the space any later commit freed may still be under its reads. Each commit's
//! [`CommitTicket`] (the pending space it captured) is therefore tagged with the
//! commit's generation and finished only once no live slot of the readers file names
//! an older generation. Tickets are finished in the order they were issued, which is
//! what the allocator expects.
//!
//! The writer reads the table only when space is waiting (a ticket kept, or pending
//! space in the allocator), after a commit and before a hole punch; a commit that frees
//! nothing, or a database no reader process has open, costs one read of the table at
//! most, and no lock or system call otherwise.

use std::collections::VecDeque;

use seqdb_layout::CommitTicket;

use crate::database::{Inner, Table};
use crate::readers_file::{Attachment, KeptForReaders};

/// Commits whose freed space a reader process may still view, oldest first.
#[derive(Debug, Default)]
pub(crate) struct KeptSpace {
    tickets: VecDeque<(u64, CommitTicket)>,
    /// What the readers file says the writer keeps.
    reported: KeptForReaders,
}

impl KeptSpace {
    /// Whether any commit's space is kept.
    pub(crate) fn is_empty(&self) -> bool {
        self.tickets.is_empty()
    }
}

/// No reader process views a generation below this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OldestReader(u64);

/// A read-write open at `generation`: when a live reader process views an older
/// generation, the space this state does not use (free holes, and the data file past the
/// layout's end, `data_len` bytes long) may be under its reads, since the writer that
/// freed it is gone with what it kept. Keep all of it as if commit `generation` had just
/// freed it.
pub(crate) fn keep_free_at_open(
    attachment: Option<&Attachment>,
    table: &mut Table,
    generation: u64,
    data_len: u64,
) -> crate::Result<()> {
    let Some(Attachment::Writer(file)) = attachment else {
        return Ok(());
    };
    if file
        .live(None, true)?
        .iter()
        .any(|r| r.generation < generation)
    {
        table.layout.pend_free_space(data_len);
        let ticket = table.layout.begin_commit();
        table.kept.tickets.push_back((generation, ticket));
    }
    Ok(())
}

impl Inner {
    /// The oldest generation a live reader process views, read from the readers file
    /// only when some space waits for it. A table that cannot be read keeps everything
    /// (until a later read succeeds).
    pub(crate) fn oldest_reader(&self) -> OldestReader {
        let Some(Attachment::Writer(file)) = &self.attachment else {
            return OldestReader(u64::MAX);
        };
        let waiting = {
            let table = self.table.read();
            !table.kept.is_empty() || table.layout.pending().next().is_some()
        };
        if !waiting {
            return OldestReader(u64::MAX);
        }
        match file.live(None, true) {
            Ok(live) => OldestReader(live.iter().map(|r| r.generation).min().unwrap_or(u64::MAX)),
            Err(_) => OldestReader(0),
        }
    }

    /// Commit `generation` is durable and `ticket` captured the space it (and the
    /// commits before it) freed: free that space now, or keep it while a reader process
    /// may view an older generation. Then free what earlier commits kept, as far as
    /// `oldest` allows.
    pub(crate) fn finish_or_keep(
        &self,
        table: &mut Table,
        generation: u64,
        ticket: CommitTicket,
        oldest: OldestReader,
    ) {
        table.kept.tickets.push_back((generation, ticket));
        self.release_kept(table, oldest);
    }

    /// Free the space of every kept commit that no reader process may view any more.
    pub(crate) fn release_kept(&self, table: &mut Table, oldest: OldestReader) {
        while let Some(&(generation, _)) = table.kept.tickets.front() {
            if generation > oldest.0 {
                break;
            }
            if let Some((_, ticket)) = table.kept.tickets.pop_front() {
                table.layout.finish_commit(ticket);
            }
        }
        self.report_kept(table, oldest);
    }

    /// Say in the readers file how much space is kept, when that changed.
    fn report_kept(&self, table: &mut Table, oldest: OldestReader) {
        let Some(Attachment::Writer(file)) = &self.attachment else {
            return;
        };
        let report = if table.kept.is_empty() {
            KeptForReaders {
                writer_pid: std::process::id(),
                ..KeptForReaders::default()
            }
        } else {
            KeptForReaders {
                writer_pid: std::process::id(),
                bytes: table.layout.stats().pending_bytes,
                oldest_generation: oldest.0,
            }
        };
        if report != table.kept.reported && file.report(&report).is_ok() {
            table.kept.reported = report;
        }
    }
}
