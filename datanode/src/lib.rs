//! Data node.
