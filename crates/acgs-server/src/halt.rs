//! Whether the system is halted by its emergency set: read on every decision (one atomic load), set by the
//! governance service when a halt or resume is carried and when it reads the stored state (at start, and
//! periodically, for halts decided by another replica). While halted, the decision service denies everything.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use acgs_governance::EmergencyState;
use arc_swap::ArcSwap;

/// The halt state the server acts on.
#[derive(Debug, Default)]
pub struct HaltSwitch {
    halted: AtomicBool,
    state: ArcSwap<EmergencyState>,
}

impl HaltSwitch {
    /// Start from `state` (as stored).
    pub fn new(state: EmergencyState) -> Self {
        let switch = Self::default();
        switch.set(state);
        switch
    }

    /// Whether every decision is to be denied.
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// The full state: since when, why, by whom, and the motion collecting approvals.
    pub fn state(&self) -> Arc<EmergencyState> {
        self.state.load_full()
    }

    /// Act on `state` from now on (and show it in `acgs_emergency_halted`).
    pub fn set(&self, state: EmergencyState) {
        let halted = state.halted;
        self.state.store(Arc::new(state));
        self.halted.store(halted, Ordering::Release);
        metrics::gauge!("acgs_emergency_halted").set(if halted { 1.0 } else { 0.0 });
    }
}
