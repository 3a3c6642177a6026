//! Planted bugs in product code, for proving the simulator's checkers can fail.
//!
//! Each [`Bug`] is a deliberate defect at one place in the product (the read barrier,
//! the data node's fsync and block checks, the placement planner, the state machine's
//! apply) that the
//! simulator switches on for a run; the test that runs it asserts that the checker the
//! bug targets reports it. "A checker that never fires proves nothing."
//!
//! The switches exist only in the `--cfg madsim` build. In the normal build
//! [`active`] is a constant `false` and the planted branches compile away, so a
//! production binary carries no fault switch. In simulation the switches are
//! thread-local: madsim runs a whole cluster on the thread that drives it, and test
//! harnesses run independent simulations on different threads at once.

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// Meta nodes serve reads from their local state machine without the leader read
    /// barrier (`ensure_linearizable`), so a deposed leader or a lagging replica answers.
    SkipReadBarrier,
    /// Data nodes acknowledge a fragment write before `fsync` (they never sync it).
    AckBeforeSync,
    /// The placement planner puts `m + 1` fragments of a stripe in one rack (when a rack
    /// has enough eligible nodes) and skips its own check of the rule.
    RackOverload,
    /// The state machine acknowledges some object-version writes without storing the
    /// version (on every replica alike: a deterministic bug in apply).
    DropVersionOnApply,
    /// Data nodes return fragment blocks without checking their CRC32C (reads and
    /// scrub), so bytes rotted at rest reach the gateway.
    SkipBlockVerify,
    /// The state machine stamps a new version with the replica's own clock at apply
    /// instead of the time carried in the command: a non-deterministic apply.
    ApplyReadsClock,
}

impl Bug {
    const ALL: [Bug; 6] = [
        Bug::SkipReadBarrier,
        Bug::AckBeforeSync,
        Bug::RackOverload,
        Bug::DropVersionOnApply,
        Bug::SkipBlockVerify,
        Bug::ApplyReadsClock,
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The bug's kebab-case name (scenario files, logs).
    pub fn name(self) -> &'static str {
        match self {
            Bug::SkipReadBarrier => "skip-read-barrier",
            Bug::AckBeforeSync => "ack-before-sync",
            Bug::RackOverload => "rack-overload",
            Bug::DropVersionOnApply => "drop-version-on-apply",
            Bug::SkipBlockVerify => "skip-block-verify",
            Bug::ApplyReadsClock => "apply-reads-clock",
        }
    }

    pub fn parse(name: &str) -> Option<Bug> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

#[cfg(madsim)]
thread_local! {
    static ACTIVE: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// Whether `bug` is switched on (always `false` outside simulation).
#[inline]
pub fn active(bug: Bug) -> bool {
    #[cfg(madsim)]
    {
        ACTIVE.with(|a| a.get() & bug.bit() != 0)
    }
    #[cfg(not(madsim))]
    {
        let _ = bug.bit();
        false
    }
}

/// Switches `bug` on or off for the simulation running on this thread.
#[cfg(madsim)]
pub fn set(bug: Bug, on: bool) {
    ACTIVE.with(|a| {
        let v = a.get();
        a.set(if on { v | bug.bit() } else { v & !bug.bit() });
    });
}

/// Switches every bug off (a simulation's start and end).
#[cfg(madsim)]
pub fn clear() {
    ACTIVE.with(|a| a.set(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Bug::ALL {
            assert_eq!(Bug::parse(b.name()), Some(b));
        }
        assert_eq!(Bug::parse("nope"), None);
    }

    #[cfg(not(madsim))]
    #[test]
    fn never_active_outside_simulation() {
        for b in Bug::ALL {
            assert!(!active(b));
        }
    }

    #[cfg(madsim)]
    #[test]
    fn switches_are_independent() {
        clear();
        set(Bug::RackOverload, true);
        assert!(active(Bug::RackOverload));
        assert!(!active(Bug::SkipReadBarrier));
        set(Bug::RackOverload, false);
        assert!(!active(Bug::RackOverload));
    }
}
