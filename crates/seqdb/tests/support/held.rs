//! Readers held on a thread of their own, so that a test driving a database from one
//! thread can keep snapshots alive across its steps, flushes and compactions (a reader
//! borrows its handle, which the driver also needs to replace on reopen). Each reader is
//! checked against the bytes it showed when it was taken, whenever asked and before it
//! is dropped.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use seqdb::{Database, Identifier, Reader};

enum Request {
    Take {
        id: Identifier,
        expected: Arc<Vec<u8>>,
        done: Sender<Result<(), String>>,
    },
    Check {
        done: Sender<Result<usize, String>>,
    },
    Drop {
        pick: u64,
        done: Sender<Result<(), String>>,
    },
}

/// The holding thread, with its own handle of the database.
pub struct HeldReaders {
    requests: Option<Sender<Request>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl HeldReaders {
    /// Start holding readers of `database` (a clone of the caller's handle): the
    /// database stays open until [`stop`](Self::stop).
    pub fn new(database: Database) -> Self {
        let (requests, receiver) = channel();
        let thread = std::thread::spawn(move || hold(&database, &receiver));
        HeldReaders {
            requests: Some(requests),
            thread: Some(thread),
        }
    }

    fn ask<T>(
        &self,
        request: impl FnOnce(Sender<Result<T, String>>) -> Request,
    ) -> Result<T, String> {
        let (done, answer) = channel();
        let requests = self.requests.as_ref().ok_or("stopped")?;
        requests
            .send(request(done))
            .map_err(|_| "the holding thread is gone".to_owned())?;
        answer
            .recv()
            .map_err(|_| "the holding thread is gone".to_owned())?
    }

    /// Take a reader of `id`, which must show exactly `expected`, and hold it.
    pub fn take(&self, id: Identifier, expected: Arc<Vec<u8>>) -> Result<(), String> {
        self.ask(|done| Request::Take { id, expected, done })
    }

    /// Check every held reader; returns how many there are.
    pub fn check(&self) -> Result<usize, String> {
        self.ask(|done| Request::Check { done })
    }

    /// Check and drop one held reader, picked by `pick` modulo their number (none held:
    /// nothing happens).
    pub fn drop_one(&self, pick: u64) -> Result<(), String> {
        self.ask(|done| Request::Drop { pick, done })
    }

    /// Check and drop every reader, and the thread's handle.
    pub fn stop(mut self) -> Result<(), String> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), String> {
        drop(self.requests.take());
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| "the holding thread panicked".to_owned())?,
            None => Ok(()),
        }
    }
}

impl Drop for HeldReaders {
    fn drop(&mut self) {
        let result = self.finish();
        if !std::thread::panicking() {
            result.expect("held readers");
        }
    }
}

/// One held reader and what it showed when taken.
struct Held<'a> {
    reader: Reader<'a>,
    id: Identifier,
    expected: Arc<Vec<u8>>,
}

impl Held<'_> {
    fn check(&self) -> Result<(), String> {
        let got = self.reader.read_all();
        if got == self.expected.as_slice() && self.reader.len() == self.expected.len() as u64 {
            return Ok(());
        }
        let first = got
            .iter()
            .zip(self.expected.iter())
            .position(|(a, b)| a != b);
        Err(format!(
            "a reader of {} changed: {} bytes (expected {}), first difference at {first:?}",
            self.id,
            got.len(),
            self.expected.len()
        ))
    }
}

fn hold(database: &Database, requests: &Receiver<Request>) -> Result<(), String> {
    let mut held: Vec<Held<'_>> = Vec::new();
    let check_all = |held: &[Held<'_>]| held.iter().try_for_each(Held::check);
    for request in requests {
        match request {
            Request::Take { id, expected, done } => {
                let result = database
                    .create_region_reader(id.clone())
                    .map_err(|e| format!("reader of {id}: {e}"))
                    .and_then(|reader| {
                        let one = Held {
                            reader,
                            id,
                            expected,
                        };
                        one.check()?;
                        held.push(one);
                        Ok(())
                    });
                let _ = done.send(result);
            }
            Request::Check { done } => {
                let _ = done.send(check_all(&held).map(|()| held.len()));
            }
            Request::Drop { pick, done } => {
                let result = if held.is_empty() {
                    Ok(())
                } else {
                    let one = held.remove((pick % held.len() as u64) as usize);
                    one.check()
                };
                let _ = done.send(result);
            }
        }
    }
    check_all(&held)
}
