//! The data path (placeholder).
