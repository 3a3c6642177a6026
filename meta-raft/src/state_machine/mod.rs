//! Object-group state machine (in progress).
