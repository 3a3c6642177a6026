//! Rack-aware placement planner.
