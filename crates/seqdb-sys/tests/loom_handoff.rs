//! Model checks of the handoff buffer ([`seqdb_sys::handoff`]) with loom.
//!
//! Built with `--cfg loom`, the buffer uses loom's `Arc`, atomics and cells, with one loom
//! cell standing for each byte (`src/sync_shim.rs`). Loom runs each test's closure under
//! every interleaving of its threads within the preemption bound, and with every value
//! each atomic load may return under the memory model (as loom models it): an assertion
//! that fails in any of them, or an access to a byte not ordered by happens-before with a
//! write of it on another thread (a data race, such as the consumer reading bytes not yet
//! published), fails the test.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p seqdb-sys --release --test loom_handoff
//! ```
//!
//! `cargo xtask ci` runs it. `LOOM_MAX_PREEMPTIONS=<n>` changes the bound (default
//! `loom_common::PREEMPTIONS`); at 255, loom's largest, the exploration of these models is exhaustive
//! and takes a few seconds.
#![cfg(loom)]

use loom::sync::{Arc, Mutex};
use loom::thread;

use seqdb_sys::{Consumer, Producer, handoff};

mod loom_common;

use loom_common::check;

/// Take every pending byte, as the database's collectors do: copy, then consume as many.
fn take(consumer: &mut Consumer, into: &mut Vec<u8>) {
    let pending = consumer.pending();
    let n = pending.len();
    into.extend_from_slice(pending);
    consumer.consume(n);
}

/// A consumer collecting while the producer pushes sees whole pushes, in order, each
/// once, and never a byte before it is published (loom would report the read as a race).
/// A push that does not fit appends nothing, and the room and reach add up at the end.
#[test]
fn pushes_arrive_whole_in_order_and_once() {
    check(|| {
        let (mut producer, mut consumer) = handoff(4);
        let pusher = thread::spawn(move || {
            assert!(producer.push(b"ab"));
            assert!(producer.push(b"c"));
            assert!(!producer.push(b"de"), "does not fit");
            producer
        });
        let mut seen = Vec::new();
        for _ in 0..2 {
            take(&mut consumer, &mut seen);
            assert!(
                matches!(seen.len(), 0 | 2 | 3),
                "a part of a push: {seen:?}"
            );
            assert_eq!(seen, b"abc"[..seen.len()]);
        }
        let producer = pusher.join().unwrap();
        take(&mut consumer, &mut seen);
        assert_eq!(seen, b"abc");
        assert_eq!(producer.room(), 1);
        assert_eq!(consumer.reach(), 1);
    });
}

/// The collector's loop for a producer that ends: read `is_finished` first, then the
/// bytes. Once it has seen the producer gone, it has every byte, without a join.
#[test]
fn a_finished_producer_left_every_byte_pending() {
    check(|| {
        let (mut producer, mut consumer) = handoff(4);
        let pusher = thread::spawn(move || {
            assert!(producer.push(b"ab"));
            assert!(producer.push(b"c"));
        });
        let mut seen = Vec::new();
        loop {
            let finished = consumer.is_finished();
            take(&mut consumer, &mut seen);
            if finished {
                break;
            }
            thread::yield_now();
        }
        assert_eq!(seen, b"abc");
        pusher.join().unwrap();
    });
}

/// The same loop reading the bytes before `is_finished`, which the buffer's documentation
/// warns against: the producer may push and go between the two reads, and loom finds the
/// interleaving where the last push is lost.
#[test]
#[should_panic(expected = "lost")]
fn reading_the_bytes_before_is_finished_can_lose_the_last_push() {
    check(|| {
        let (mut producer, mut consumer) = handoff(4);
        let pusher = thread::spawn(move || {
            assert!(producer.push(b"ab"));
            assert!(producer.push(b"c"));
        });
        let mut seen = Vec::new();
        loop {
            take(&mut consumer, &mut seen);
            if consumer.is_finished() {
                break;
            }
            thread::yield_now();
        }
        assert_eq!(seen, b"abc", "bytes lost");
        pusher.join().unwrap();
    });
}

/// The database's use: the consumer sits behind the region's lock, where any thread may
/// collect it; the producer, finding the buffer full, takes the lock, collects, rewinds
/// and pushes again. The pushes after the rewind overwrite bytes the other thread read:
/// loom checks those reads happen-before the new writes, through the lock.
#[test]
fn a_full_buffer_is_collected_rewound_and_refilled_by_its_producer() {
    check(|| {
        let (mut producer, consumer) = handoff(2);
        let lent = Arc::new(Mutex::new((consumer, Vec::new())));
        let appender = {
            let lent = lent.clone();
            thread::spawn(move || {
                for piece in [&b"a"[..], b"b", b"c"] {
                    if producer.push(piece) {
                        continue;
                    }
                    let mut guard = lent.lock().unwrap();
                    let (consumer, seen) = &mut *guard;
                    take(consumer, seen);
                    assert!(consumer.rewind(&mut producer), "everything was collected");
                    assert!(producer.push(piece));
                }
                producer
            })
        };
        {
            let mut guard = lent.lock().unwrap();
            let (consumer, seen) = &mut *guard;
            take(consumer, seen);
        }
        let producer = appender.join().unwrap();
        let mut guard = lent.lock().unwrap();
        let (consumer, seen) = &mut *guard;
        take(consumer, seen);
        assert_eq!(seen, b"abc");
        assert_eq!(producer.room(), 1);
    });
}

/// A rewind by the consumer's thread while the producer is alive but idle, parked where
/// its thread takes it back for each push: the consumer reads without a lock, and the
/// rewind and the handing over of the producer order those reads before the new writes.
#[test]
fn the_consumer_rewinds_an_idle_producer() {
    check(|| {
        let (producer, mut consumer) = handoff(1);
        let parked: Arc<Mutex<Producer>> = Arc::new(Mutex::new(producer));
        let pusher = {
            let parked = parked.clone();
            thread::spawn(move || {
                let mut pushed = Vec::new();
                for piece in [b"a", b"b"] {
                    if parked.lock().unwrap().push(piece) {
                        pushed.push(piece[0]);
                    }
                }
                pushed
            })
        };
        let mut seen = Vec::new();
        take(&mut consumer, &mut seen);
        {
            let mut producer = parked.lock().unwrap();
            let everything_taken = consumer.reach() == producer.room();
            assert_eq!(consumer.rewind(&mut producer), everything_taken);
        }
        take(&mut consumer, &mut seen);
        let pushed = pusher.join().unwrap();
        take(&mut consumer, &mut seen);
        assert_eq!(seen, pushed, "every accepted push collected once, in order");
        assert!(!pushed.is_empty());
    });
}

/// The consumer goes while the producer pushes: no byte is accessed unsafely, and pushes
/// are refused from the moment the producer could see it gone.
#[test]
fn the_consumer_goes_while_the_producer_pushes() {
    check(|| {
        let (mut producer, consumer) = handoff(4);
        let pusher = thread::spawn(move || {
            let first = producer.push(b"a");
            let connected = producer.is_connected();
            let second = producer.push(b"b");
            if !first || !connected {
                assert!(!second, "refused once the consumer was seen gone");
            }
            producer
        });
        let pending = consumer.pending().to_vec();
        assert!(pending.is_empty() || pending == b"a" || pending == b"ab");
        drop(consumer);
        let mut producer = pusher.join().unwrap();
        assert!(!producer.is_connected());
        assert!(!producer.push(b"c"), "the consumer's end happened before");
    });
}

/// Both halves go at once, one on each thread: the two ends do not race, and the buffer
/// does not leak (loom checks every model for leaks).
#[test]
fn both_halves_go_at_once() {
    check(|| {
        let (mut producer, consumer) = handoff(2);
        let pusher = thread::spawn(move || {
            producer.push(b"a");
        });
        drop(consumer);
        pusher.join().unwrap();
    });
}

/// Two collectors take turns through the region's lock (a flush and a reader) while the
/// producer pushes and then goes: the bytes are collected in order and once between them,
/// and whichever sees the producer gone has every byte.
#[test]
fn two_collectors_share_the_consumer() {
    check(|| {
        let (mut producer, consumer) = handoff(2);
        let lent = Arc::new(Mutex::new((consumer, Vec::new(), false)));
        let pusher = thread::spawn(move || {
            assert!(producer.push(b"a"));
            assert!(producer.push(b"b"));
        });
        let collect = |lent: &Mutex<(Consumer, Vec<u8>, bool)>| {
            let mut guard = lent.lock().unwrap();
            let (consumer, seen, done) = &mut *guard;
            let finished = consumer.is_finished();
            take(consumer, seen);
            if finished {
                assert_eq!(seen, b"ab", "the producer is gone: every byte is here");
                *done = true;
            }
        };
        let reader = {
            let lent = lent.clone();
            thread::spawn(move || collect(&lent))
        };
        collect(&lent);
        reader.join().unwrap();
        pusher.join().unwrap();
        collect(&lent);
        let guard = lent.lock().unwrap();
        assert_eq!(guard.1, b"ab");
        assert!(guard.2);
    });
}
