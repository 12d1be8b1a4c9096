//! The limits a plan holds, as values that are valid by construction: a plan with a memory
//! limit below the minimum, a CPU share of zero or NaN, a pids limit of 0, a swap limit below
//! (or without) the memory limit, or a zero timeout cannot be built. The resolver reports
//! what is wrong with the spec's values; the mechanisms (`cgroup`) trust what they are given.

use std::time::Duration;

use serde::{Serialize, Serializer};

use super::Spanned;

/// podman's floor: below this not even a shell starts reliably.
pub const MIN_MEMORY: u64 = 6 << 20;
/// The smallest CPU share a CFS quota can express (1 ms per 100 ms period).
pub const MIN_CPUS: f64 = 0.01;
/// The kernel's largest CPU count (NR_CPUS on x86_64).
pub const MAX_CPUS: f64 = 8192.0;

/// Why a limit value cannot be in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("a memory limit must be at least 6 MiB")]
    MemoryTooSmall,
    #[error("memory + swap cannot be less than the memory limit")]
    SwapBelowMemory,
    #[error("a CPU limit must be between 0.01 and 8192 CPUs")]
    CpusOutOfRange,
    #[error("a pids limit must allow at least one process")]
    NoProcess,
    #[error("a timeout must be more than zero")]
    ZeroTimeout,
}

/// A memory amount a box may be limited to: at least [`MIN_MEMORY`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MemoryBytes(u64);

impl MemoryBytes {
    pub fn new(bytes: u64) -> Result<MemoryBytes, LimitError> {
        if bytes < MIN_MEMORY {
            return Err(LimitError::MemoryTooSmall);
        }
        Ok(MemoryBytes(bytes))
    }

    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// A CPU limit in cores: finite, within [`MIN_CPUS`]..=[`MAX_CPUS`].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Cpus(f64);

impl Cpus {
    pub fn new(cores: f64) -> Result<Cpus, LimitError> {
        if !cores.is_finite() || !(MIN_CPUS..=MAX_CPUS).contains(&cores) {
            return Err(LimitError::CpusOutOfRange);
        }
        Ok(Cpus(cores))
    }

    pub fn cores(self) -> f64 {
        self.0
    }
}

/// A limit on the number of processes: at least 1 (the box's first process counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Pids(u64);

impl Pids {
    pub fn new(count: u64) -> Result<Pids, LimitError> {
        if count == 0 {
            return Err(LimitError::NoProcess);
        }
        Ok(Pids(count))
    }

    pub fn count(self) -> u64 {
        self.0
    }
}

/// A box's limits. Built from [`Limits::new`] and the `with_*` methods, which keep every value
/// valid on its own and together (a swap limit only with, and not below, a memory limit).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    memory: Option<Spanned<MemoryBytes>>,
    /// Memory + swap; `None` with a memory limit means "same as memory" (no swap).
    memory_swap: Option<Spanned<MemoryBytes>>,
    cpus: Option<Spanned<Cpus>>,
    pids: Option<Spanned<Pids>>,
    #[serde(serialize_with = "ser_duration_opt")]
    timeout: Option<Spanned<Duration>>,
    /// Between SIGTERM and SIGKILL when the box is stopped (`None`: [`DEFAULT_STOP_TIMEOUT`];
    /// zero is podman's "kill at once").
    #[serde(serialize_with = "ser_duration_opt")]
    stop_timeout: Option<Spanned<Duration>>,
    enforce: super::Enforce,
}

/// How long a box being stopped has between SIGTERM and SIGKILL unless its plan says (podman's
/// `--stop-timeout` default).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

fn ser_duration_opt<S: Serializer>(d: &Option<Spanned<Duration>>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&humantime::format_duration(d.value).to_string()),
        None => s.serialize_none(),
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(super::Enforce::default())
    }
}

impl Limits {
    /// No limits; `enforce` says what to do with limits this host cannot enforce.
    pub fn new(enforce: super::Enforce) -> Limits {
        Limits {
            memory: None,
            memory_swap: None,
            cpus: None,
            pids: None,
            timeout: None,
            stop_timeout: None,
            enforce,
        }
    }

    /// A memory limit, and optionally one on memory + swap (at least the memory limit).
    pub fn with_memory(
        mut self,
        memory: Spanned<MemoryBytes>,
        swap: Option<Spanned<MemoryBytes>>,
    ) -> Result<Limits, LimitError> {
        if swap.as_ref().is_some_and(|s| s.value < memory.value) {
            return Err(LimitError::SwapBelowMemory);
        }
        self.memory = Some(memory);
        self.memory_swap = swap;
        Ok(self)
    }

    pub fn with_cpus(mut self, cpus: Spanned<Cpus>) -> Limits {
        self.cpus = Some(cpus);
        self
    }

    pub fn with_pids(mut self, pids: Spanned<Pids>) -> Limits {
        self.pids = Some(pids);
        self
    }

    pub fn with_timeout(mut self, timeout: Spanned<Duration>) -> Result<Limits, LimitError> {
        if timeout.value.is_zero() {
            return Err(LimitError::ZeroTimeout);
        }
        self.timeout = Some(timeout);
        Ok(self)
    }

    /// Any duration, zero included (podman's "kill at once").
    pub fn with_stop_timeout(mut self, grace: Spanned<Duration>) -> Limits {
        self.stop_timeout = Some(grace);
        self
    }

    /// Bytes.
    pub fn memory(&self) -> Option<&Spanned<MemoryBytes>> {
        self.memory.as_ref()
    }

    /// Bytes of memory + swap (never below [`Limits::memory`]); `None` with a memory limit
    /// means "same as memory" (no swap).
    pub fn memory_swap(&self) -> Option<&Spanned<MemoryBytes>> {
        self.memory_swap.as_ref()
    }

    /// Fractions of a CPU.
    pub fn cpus(&self) -> Option<&Spanned<Cpus>> {
        self.cpus.as_ref()
    }

    pub fn pids(&self) -> Option<&Spanned<Pids>> {
        self.pids.as_ref()
    }

    /// Never zero.
    pub fn timeout(&self) -> Option<&Spanned<Duration>> {
        self.timeout.as_ref()
    }

    /// The stop timeout the plan sets, if any.
    pub fn stop_timeout(&self) -> Option<&Spanned<Duration>> {
        self.stop_timeout.as_ref()
    }

    /// The grace period between SIGTERM and SIGKILL when the box is stopped.
    pub fn stop_grace(&self) -> Duration {
        self.stop_timeout
            .as_ref()
            .map_or(DEFAULT_STOP_TIMEOUT, |t| t.value)
    }

    pub fn enforce(&self) -> super::Enforce {
        self.enforce
    }

    /// True when any cgroup-backed limit is declared (timeout is enforced by foxbox itself).
    pub fn needs_cgroup(&self) -> bool {
        self.memory.is_some() || self.cpus.is_some() || self.pids.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_values_cannot_be_built() {
        assert_eq!(MemoryBytes::new(0), Err(LimitError::MemoryTooSmall));
        assert_eq!(
            MemoryBytes::new(MIN_MEMORY - 1),
            Err(LimitError::MemoryTooSmall)
        );
        assert!(MemoryBytes::new(MIN_MEMORY).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 0.001, 9000.0] {
            assert_eq!(Cpus::new(bad), Err(LimitError::CpusOutOfRange), "{bad}");
        }
        assert!(Cpus::new(0.5).is_ok());
        assert_eq!(Pids::new(0), Err(LimitError::NoProcess));
        let m = |b| Spanned::bare(MemoryBytes::new(b).unwrap());
        assert_eq!(
            Limits::default().with_memory(m(64 << 20), Some(m(32 << 20))),
            Err(LimitError::SwapBelowMemory)
        );
        assert!(Limits::default()
            .with_memory(m(64 << 20), Some(m(64 << 20)))
            .is_ok());
        assert_eq!(
            Limits::default().with_timeout(Spanned::bare(Duration::ZERO)),
            Err(LimitError::ZeroTimeout)
        );
    }
}
