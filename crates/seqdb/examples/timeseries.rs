//! A column store for time series: one region per fixed-width column, appended in
//! batches, read back zero-copy as typed slices.
//!
//! Regions start on page boundaries and the memory map is page-aligned, so a region's
//! bytes are aligned for any primitive type and `bytemuck::try_cast_slice` can view them
//! as `&[u64]` or `&[f64]` without a copy. The cast is still checked: it fails (and this
//! example reports it) if a column's length is not a whole number of values.
//!
//! Run it with `cargo run -p seqdb --example timeseries`, optionally followed by
//! `-- ROWS` (default 1,000,000).

use std::error::Error;
use std::time::Instant;

use bytemuck::Pod;
use seqdb::{Database, Reader};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// Rows appended per batch.
const BATCH: usize = 10_000;
/// Nanoseconds between two ticks.
const TICK_NS: u64 = 250_000_000;
/// 2024-01-01T00:00:00Z in nanoseconds since the Unix epoch.
const START_NS: u64 = 1_704_067_200_000_000_000;

/// One tick of a made-up market: every field becomes a column.
struct Tick {
    time_ns: u64,
    price: f64,
    bid: f64,
    ask: f64,
    volume: u64,
    trades: u32,
}

/// A deterministic random walk of ticks.
struct Market {
    state: u64,
    row: u64,
    price: f64,
}

impl Market {
    fn new() -> Self {
        Market {
            state: 0x2545_F491_4F6C_DD1D,
            row: 0,
            price: 100.0,
        }
    }

    fn random(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn next_tick(&mut self) -> Tick {
        let step = (self.random() % 2001) as f64 / 1000.0 - 1.0; // -1.0 ..= 1.0 in cents
        self.price = (self.price + step / 100.0).max(1.0);
        let spread = 0.01 + (self.random() % 5) as f64 / 100.0;
        let tick = Tick {
            time_ns: START_NS + self.row * TICK_NS,
            price: self.price,
            bid: self.price - spread / 2.0,
            ask: self.price + spread / 2.0,
            volume: 1 + self.random() % 500,
            trades: 1 + (self.random() % 20) as u32,
        };
        self.row += 1;
        tick
    }
}

/// Column buffers of one batch.
#[derive(Default)]
struct Batch {
    time_ns: Vec<u64>,
    price: Vec<f64>,
    bid: Vec<f64>,
    ask: Vec<f64>,
    volume: Vec<u64>,
    trades: Vec<u32>,
}

const COLUMNS: [&str; 6] = ["time_ns", "price", "bid", "ask", "volume", "trades"];

/// What the writer computed on the way, to check the reader against.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    rows: u64,
    notional: f64,
    volume: u64,
    trades: u64,
    max_spread: f64,
}

fn write(database: &Database, rows: usize) -> Result<Summary> {
    let ids: Vec<usize> = COLUMNS
        .iter()
        .map(|name| database.create_region_if_needed(name).map(|(id, _)| id))
        .collect::<seqdb::Result<_>>()?;
    let mut market = Market::new();
    let mut summary = Summary::default();
    let mut batch = Batch::default();
    for row in 0..rows {
        let tick = market.next_tick();
        summary.notional += tick.price * tick.volume as f64;
        summary.volume += tick.volume;
        summary.trades += u64::from(tick.trades);
        summary.max_spread = summary.max_spread.max(tick.ask - tick.bid);
        batch.time_ns.push(tick.time_ns);
        batch.price.push(tick.price);
        batch.bid.push(tick.bid);
        batch.ask.push(tick.ask);
        batch.volume.push(tick.volume);
        batch.trades.push(tick.trades);
        if batch.time_ns.len() == BATCH || row + 1 == rows {
            let columns: [&[u8]; 6] = [
                bytemuck::cast_slice(&batch.time_ns),
                bytemuck::cast_slice(&batch.price),
                bytemuck::cast_slice(&batch.bid),
                bytemuck::cast_slice(&batch.ask),
                bytemuck::cast_slice(&batch.volume),
                bytemuck::cast_slice(&batch.trades),
            ];
            for (id, bytes) in ids.iter().zip(columns) {
                database.write_all_to_region((*id).into(), bytes)?;
            }
            batch = Batch::default();
        }
    }
    summary.rows = rows as u64;
    database.flush()?;
    Ok(summary)
}

/// View a column's bytes as values of `T`, without copying.
fn column<'r, T: Pod>(reader: &'r Reader<'_>) -> Result<&'r [T]> {
    bytemuck::try_cast_slice(reader.read_all()).map_err(|e| {
        format!(
            "column {:?} ({} bytes) cannot be viewed as {}: {e}",
            reader.region().name(),
            reader.len(),
            std::any::type_name::<T>()
        )
        .into()
    })
}

fn read(database: &Database) -> Result<Summary> {
    let readers: Vec<Reader<'_>> = COLUMNS
        .iter()
        .map(|name| database.create_region_reader((*name).into()))
        .collect::<seqdb::Result<_>>()?;
    let time_ns: &[u64] = column(&readers[0])?;
    let price: &[f64] = column(&readers[1])?;
    let bid: &[f64] = column(&readers[2])?;
    let ask: &[f64] = column(&readers[3])?;
    let volume: &[u64] = column(&readers[4])?;
    let trades: &[u32] = column(&readers[5])?;
    let rows = time_ns.len();
    if [
        price.len(),
        bid.len(),
        ask.len(),
        volume.len(),
        trades.len(),
    ] != [rows; 5]
    {
        return Err("columns have different lengths".into());
    }

    let summary = Summary {
        rows: rows as u64,
        notional: price.iter().zip(volume).map(|(p, v)| p * *v as f64).sum(),
        volume: volume.iter().sum(),
        trades: trades.iter().map(|&t| u64::from(t)).sum(),
        max_spread: ask.iter().zip(bid).map(|(a, b)| a - b).fold(0.0, f64::max),
    };

    // A time window: binary search on the sorted time column gives the rows, and every
    // other column is sliced at the same positions, still without a copy.
    let from = START_NS + 3600 * 1_000_000_000;
    let to = from + 60 * 1_000_000_000;
    let first = time_ns.partition_point(|&t| t < from);
    let last = time_ns.partition_point(|&t| t < to);
    if first < last {
        let window = &price[first..last];
        let high = window.iter().copied().fold(f64::MIN, f64::max);
        let low = window.iter().copied().fold(f64::MAX, f64::min);
        println!(
            "minute after the first hour: rows {first}..{last}, price {:.4} -> {:.4}, high {high:.4}, low {low:.4}",
            window[0],
            window[window.len() - 1]
        );
    }
    Ok(summary)
}

fn main() -> Result<()> {
    let rows: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("ROWS {arg:?}: {e}"))?,
        None => 1_000_000,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ticks");

    let started = Instant::now();
    let written = {
        let database = Database::open(&path)?;
        write(&database, rows)?
    };
    println!(
        "wrote {rows} rows into {} column regions and flushed ({:.2?})",
        COLUMNS.len(),
        started.elapsed()
    );

    let database = Database::open_read_only(&path)?;
    for region in database.regions() {
        println!(
            "  {:<8} {:>10} bytes at offset {:>10} (page-aligned: {})",
            region.name(),
            region.len(),
            region.start(),
            region.start() % seqdb::PAGE_SIZE == 0
        );
    }
    let started = Instant::now();
    let read = read(&database)?;
    println!(
        "read every column zero-copy after reopening ({:.2?}): VWAP {:.4}, volume {}, trades {}, widest spread {:.2}",
        started.elapsed(),
        read.notional / read.volume as f64,
        read.volume,
        read.trades,
        read.max_spread
    );
    if read != written {
        return Err(format!("read {read:?} but wrote {written:?}").into());
    }
    println!("the totals match what was written");

    // The checked cast at work: a column cut to a length that is not a whole number of
    // values is reported, not misread.
    drop(database);
    let database = Database::open(&path)?;
    database.truncate_region("price".into(), 8 * 10 + 3)?;
    let reader = database.create_region_reader("price".into())?;
    match column::<f64>(&reader) {
        Ok(values) => return Err(format!("a cut column read as {} values", values.len()).into()),
        Err(e) => println!("a cut column is refused: {e}"),
    }
    Ok(())
}
