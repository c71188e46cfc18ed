//! A byte buffer that one thread fills without locked instructions while others take what
//! it has published.
//!
//! [`handoff`] makes a pair: the [`Producer`] appends bytes and publishes each append with
//! one release store of the length; the [`Consumer`] reads everything published and not yet
//! consumed with an acquire load. The producer only ever writes past the published length
//! and the consumer only ever reads before it, so the two never touch the same byte at the
//! same time. Starting over at the front of the buffer ([`Consumer::rewind`]) needs both
//! halves exclusively, which the borrow checker enforces.
//!
//! On x86-64 a release store and an acquire load are plain moves, so an append costs a
//! copy and a few compares: this is what lets a database append at memory speed while a
//! flush on another thread can still collect the bytes.
//!
//! The protocol is model-checked with loom: built with `--cfg loom`, the buffer's atomics
//! and bytes are loom's (`sync_shim.rs`), and `tests/loom_handoff.rs` checks collection
//! during pushes, a producer that ends, rewinds, and a consumer that goes.

use std::fmt;

use crate::sync_shim::{Arc, AtomicBool, AtomicUsize, ByteCells, Ordering};

/// Make a producer and a consumer sharing a buffer of `capacity` bytes.
pub fn handoff(capacity: usize) -> (Producer, Consumer) {
    let shared = Arc::new(Shared {
        bytes: ByteCells::new(capacity),
        published: AtomicUsize::new(0),
        producer_gone: AtomicBool::new(false),
        consumer_gone: AtomicBool::new(false),
    });
    (
        Producer {
            shared: shared.clone(),
            len: 0,
        },
        Consumer {
            shared,
            consumed: 0,
        },
    )
}

/// What the two halves share. The bytes are accessed under the protocol in the module
/// documentation: the producer (one `&mut Producer` at a time) writes only at or past
/// `published`, the consumer reads only before the value of `published` it loaded with
/// acquire ordering, and a rewind that moves `published` back holds both halves
/// exclusively. No byte is ever accessed by two threads at once where one of them writes.
struct Shared {
    bytes: ByteCells,
    /// Bytes `[0, published)` are written and never change until a rewind.
    published: AtomicUsize,
    producer_gone: AtomicBool,
    consumer_gone: AtomicBool,
}

/// The writing half of a [`handoff`] buffer.
pub struct Producer {
    shared: Arc<Shared>,
    /// Equal to `shared.published`: only this half moves it forward.
    len: usize,
}

impl Producer {
    /// Append `data` and publish it. Returns false, appending nothing, when the buffer has
    /// no room for all of it or the consumer is gone.
    #[inline]
    pub fn push(&mut self, data: &[u8]) -> bool {
        let end = self.len + data.len();
        if end > self.shared.bytes.len() || self.shared.consumer_gone.load(Ordering::Relaxed) {
            return false;
        }
        // SAFETY: `[len, end)` is inside the buffer (checked above). It starts at the
        // published length (`len` equals it), and the consumer reads a byte only after an
        // acquire load of `published` that covers it, which reads the release store below
        // or a later one: this write happens-before such a read. A read of these bytes
        // before the last rewind happens-before that rewind, which held the consumer
        // exclusively and, with it, this producer, so it happens-before this write too.
        unsafe { self.shared.bytes.write(self.len, data) };
        self.len = end;
        self.shared.published.store(end, Ordering::Release);
        true
    }

    /// Whether the consumer still exists (bytes pushed after it is gone reach no one).
    pub fn is_connected(&self) -> bool {
        !self.shared.consumer_gone.load(Ordering::Acquire)
    }

    /// Bytes free at the end of the buffer.
    pub fn room(&self) -> usize {
        self.shared.bytes.len() - self.len
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.shared.producer_gone.store(true, Ordering::Release);
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("len", &self.len)
            .field("capacity", &self.shared.bytes.len())
            .finish()
    }
}

/// The reading half of a [`handoff`] buffer.
pub struct Consumer {
    shared: Arc<Shared>,
    consumed: usize,
}

impl Consumer {
    /// The bytes published and not consumed yet.
    #[inline]
    pub fn pending(&self) -> &[u8] {
        let published = self.shared.published.load(Ordering::Acquire);
        // SAFETY: `consumed <= published <= capacity`: `published` never exceeds the
        // capacity, both only grow, `consume` caps `consumed` at a value `published` had,
        // and a rewind resets both while holding this consumer exclusively. The bytes
        // `[consumed, published)` were written before `published` was stored with release
        // ordering (loaded above with acquire), so those writes happen-before this call.
        // The producer writes only at or past `published` until a rewind, and a rewind
        // needs `&mut self`, which the returned borrow rules out while the slice lives.
        unsafe { self.shared.bytes.read(self.consumed, published) }
    }

    /// Mark the first `n` pending bytes as taken. `n` is capped at what is pending.
    pub fn consume(&mut self, n: usize) {
        let published = self.shared.published.load(Ordering::Acquire);
        self.consumed = (self.consumed + n).min(published);
    }

    /// Whether the producer is gone. Once this returns true, [`pending`](Self::pending)
    /// shows every byte it will ever publish. A collector that stops at the producer's end
    /// must read this before the bytes: read after, it may see the producer gone though it
    /// pushed again after the bytes were read.
    pub fn is_finished(&self) -> bool {
        self.shared.producer_gone.load(Ordering::Acquire)
    }

    /// Start over at the front of the buffer, so the producer has all of it again.
    /// Returns false, changing nothing, unless `producer` is this consumer's other half
    /// and everything it published has been consumed.
    pub fn rewind(&mut self, producer: &mut Producer) -> bool {
        if !Arc::ptr_eq(&self.shared, &producer.shared) || self.consumed != producer.len {
            return false;
        }
        // Both halves are held exclusively: no byte is being read or written.
        self.consumed = 0;
        producer.len = 0;
        self.shared.published.store(0, Ordering::Release);
        true
    }

    /// The most bytes this consumer may yet take: those pending and the producer's room.
    pub fn reach(&self) -> usize {
        self.shared.bytes.len() - self.consumed
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.consumer_gone.store(true, Ordering::Release);
    }
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("consumed", &self.consumed)
            .field("pending", &self.pending().len())
            .field("capacity", &self.shared.bytes.len())
            .finish()
    }
}

// Loom's types work only inside a loom model: under `--cfg loom` these tests are replaced
// by `tests/loom_handoff.rs`.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn pushes_are_pending_until_consumed() {
        let (mut producer, mut consumer) = handoff(16);
        assert!(consumer.pending().is_empty());
        assert!(producer.push(b"abc"));
        assert!(producer.push(b"defg"));
        assert_eq!(consumer.pending(), b"abcdefg");
        consumer.consume(3);
        assert_eq!(consumer.pending(), b"defg");
        consumer.consume(100);
        assert!(consumer.pending().is_empty());
        assert_eq!(producer.room(), 9);
    }

    #[test]
    fn a_full_buffer_refuses_until_rewound() {
        let (mut producer, mut consumer) = handoff(8);
        assert!(producer.push(b"12345"));
        assert!(!producer.push(b"6789"), "does not fit");
        assert_eq!(
            consumer.pending(),
            b"12345",
            "a refused push leaves nothing"
        );
        assert!(!consumer.rewind(&mut producer), "bytes not consumed yet");
        consumer.consume(5);
        assert!(consumer.rewind(&mut producer));
        assert!(producer.push(b"6789"));
        assert_eq!(consumer.pending(), b"6789");
    }

    #[test]
    fn rewind_needs_the_other_half() {
        let (mut p1, mut c1) = handoff(8);
        let (mut p2, _c2) = handoff(8);
        assert!(!c1.rewind(&mut p2));
        assert!(c1.rewind(&mut p1));
    }

    #[test]
    fn each_half_sees_the_other_go() {
        let (producer, consumer) = handoff(8);
        assert!(producer.is_connected());
        assert!(!consumer.is_finished());
        drop(producer);
        assert!(consumer.is_finished());
        let (mut producer, consumer) = handoff(8);
        drop(consumer);
        assert!(!producer.is_connected());
        assert!(!producer.push(b"x"), "nobody would read it");
    }

    #[test]
    fn a_consumer_on_another_thread_sees_every_byte_in_order() {
        const TOTAL: usize = 200_000;
        let (mut producer, mut consumer) = handoff(1 << 12);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::with_capacity(TOTAL);
            while seen.len() < TOTAL {
                let pending = consumer.pending();
                let n = pending.len();
                seen.extend_from_slice(pending);
                consumer.consume(n);
                if consumer.is_finished() && consumer.pending().is_empty() {
                    break;
                }
                let _ = rx.try_recv();
            }
            seen
        });
        let mut next = 0usize;
        let mut sent = 0usize;
        // The consumer never rewinds here, so the producer stops when the buffer is full;
        // fill it in pieces of varying size.
        while sent < (1 << 12) {
            let n = (next % 7 + 1).min((1 << 12) - sent);
            let piece: Vec<u8> = (sent..sent + n).map(|i| i as u8).collect();
            assert!(producer.push(&piece));
            sent += n;
            next += 1;
            let _ = tx.send(());
        }
        drop(producer);
        let seen = reader.join().unwrap();
        assert_eq!(seen.len(), 1 << 12);
        assert!(seen.iter().enumerate().all(|(i, b)| *b == i as u8));
    }

    quickcheck! {
        /// Against a model: pushes, consumes and rewinds in any order keep the pending
        /// bytes equal to the model's.
        fn behaves_like_a_queue(ops: Vec<(u8, Vec<u8>)>) -> bool {
            let capacity = 32;
            let (mut producer, mut consumer) = handoff(capacity);
            let mut model: Vec<u8> = Vec::new();
            let mut used = 0;
            for (op, bytes) in ops {
                match op % 3 {
                    0 => {
                        let fits = used + bytes.len() <= capacity;
                        if producer.push(&bytes) != fits {
                            return false;
                        }
                        if fits {
                            used += bytes.len();
                            model.extend_from_slice(&bytes);
                        }
                    }
                    1 => {
                        let n = bytes.len();
                        consumer.consume(n);
                        model.drain(..n.min(model.len()));
                    }
                    _ => {
                        let rewound = consumer.rewind(&mut producer);
                        if rewound != model.is_empty() {
                            return false;
                        }
                        if rewound {
                            used = 0;
                        }
                    }
                }
                if consumer.pending() != model.as_slice()
                    || producer.room() != capacity - used
                    || consumer.reach() != model.len() + producer.room()
                {
                    return false;
                }
            }
            true
        }
    }
}
