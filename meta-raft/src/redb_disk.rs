//! redb `StorageBackend` over the `Disk` seam (in progress).
