//! `DataConfig`: the knobs of the data path.

use std::time::Duration;

/// Tuning of the PUT and GET pipelines. `Default` is the production setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataConfig {
    /// Object bytes per stripe (before coding). Default 4 MiB: 512 KiB fragments at 8+4.
    pub stripe_data_bytes: usize,
    /// Stripes a writer may have encoded and still being written at once (backpressure:
    /// `write` waits beyond this). Default 2.
    pub max_stripes_in_flight: usize,
    /// Stripes a read fetches ahead of the one being streamed, plus that one. Default 2.
    pub read_stripes_in_flight: usize,
    /// Whole fragment write (stream + fsync on the data node). Default 30 s.
    pub fragment_write_timeout: Duration,
    /// Whole fragment (range) read. Default 30 s.
    pub fragment_read_timeout: Duration,
    /// A data fragment read slower than this starts a degraded read from other fragments
    /// (parity) in parallel; whichever completes first serves the stripe. Default 1 s.
    pub hedge_after: Duration,
    /// How long a node whose fragment write failed (or read was unreachable) is avoided
    /// by new placements and tried last by reads. Default 30 s.
    pub suspect_for: Duration,
    /// Rounds of re-placing failed fragment writes onto other nodes. Default 2.
    pub replace_rounds: usize,
    /// Size of the data messages of a fragment put stream (the data node accepts at most
    /// 4 MiB). Default 1 MiB.
    pub put_chunk_bytes: usize,
    /// Stripes of at least this many bytes are encoded (and decoded) on the blocking pool;
    /// smaller ones inline on the task. Default 256 KiB.
    pub blocking_codec_bytes: usize,
    /// Connection attempts to a data node give up after this. Default 3 s.
    pub connect_timeout: Duration,
    /// Fragment deletions in flight at once (`delete_stripes`, aborts). Default 32.
    pub delete_concurrency: usize,
    /// Longest a body may take from its writer's start to its last fragment: a slower
    /// upload is refused (`RequestTimeout`) and its fragments deleted. The orphan sweep
    /// (`maintain.orphan_grace_secs`, default 6 h) deletes fragments unreferenced for its
    /// grace period, so the grace must exceed this plus a commit. Default 1 h.
    pub max_upload: Duration,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            stripe_data_bytes: 4 << 20,
            max_stripes_in_flight: 2,
            read_stripes_in_flight: 2,
            fragment_write_timeout: Duration::from_secs(30),
            fragment_read_timeout: Duration::from_secs(30),
            hedge_after: Duration::from_secs(1),
            suspect_for: Duration::from_secs(30),
            replace_rounds: 2,
            put_chunk_bytes: 1 << 20,
            blocking_codec_bytes: 256 << 10,
            connect_timeout: Duration::from_secs(3),
            delete_concurrency: 32,
            max_upload: Duration::from_secs(3600),
        }
    }
}
