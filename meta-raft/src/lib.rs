//! Shale metadata plane (issue 3): Raft groups over redb. Not built yet.
