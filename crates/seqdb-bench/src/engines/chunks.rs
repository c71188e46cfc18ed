//! The caller-side index that key-value engines need to model regions: a region is the
//! keys `(region, chunk number)`, where a chunk is the bytes of one append.

/// Where each chunk of one region starts.
#[derive(Default)]
struct Chunks {
    starts: Vec<u64>,
    len: u64,
}

/// Chunk positions of every region, kept in memory by the caller.
#[derive(Default)]
pub struct ChunkIndex {
    regions: Vec<Option<Chunks>>,
}

impl ChunkIndex {
    /// Adds an empty region and returns its handle.
    pub fn create(&mut self) -> usize {
        self.regions.push(Some(Chunks::default()));
        self.regions.len() - 1
    }

    /// Records an append of `len` bytes and returns its chunk number.
    pub fn push(&mut self, region: usize, len: usize) -> Result<u64, String> {
        let chunks = self
            .regions
            .get_mut(region)
            .and_then(Option::as_mut)
            .ok_or_else(|| format!("unknown region {region}"))?;
        chunks.starts.push(chunks.len);
        chunks.len += len as u64;
        Ok(chunks.starts.len() as u64 - 1)
    }

    /// Forgets a region and returns how many chunks it had.
    pub fn remove(&mut self, region: usize) -> Result<u64, String> {
        self.regions
            .get_mut(region)
            .and_then(Option::take)
            .map(|chunks| chunks.starts.len() as u64)
            .ok_or_else(|| format!("unknown region {region}"))
    }

    /// The region's length in bytes.
    pub fn len(&self, region: usize) -> Result<u64, String> {
        self.regions
            .get(region)
            .and_then(Option::as_ref)
            .map(|chunks| chunks.len)
            .ok_or_else(|| format!("unknown region {region}"))
    }

    /// The chunk holding byte `offset` of the region and the offset inside that chunk.
    pub fn locate(&self, region: usize, offset: u64) -> Result<(u64, usize), String> {
        let chunks = self
            .regions
            .get(region)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("unknown region {region}"))?;
        if offset >= chunks.len {
            return Err(format!("offset {offset} past the end of region {region}"));
        }
        let chunk = chunks.starts.partition_point(|&start| start <= offset) - 1;
        Ok((chunk as u64, (offset - chunks.starts[chunk]) as usize))
    }
}

/// The big-endian key of a chunk, so keys sort by region, then by chunk number.
pub fn chunk_key(region: usize, chunk: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&(region as u32).to_be_bytes());
    key[4..].copy_from_slice(&chunk.to_be_bytes());
    key
}

/// Reads the 8 bytes at `inner` of a chunk's value.
pub fn slice8(value: &[u8], inner: usize) -> Result<&[u8], String> {
    value
        .get(inner..inner + 8)
        .ok_or_else(|| format!("chunk of {} bytes has no 8 bytes at {inner}", value.len()))
}
