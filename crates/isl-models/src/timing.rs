//! Stage timers. On wasm32-unknown-unknown (no clock without JavaScript) every time reads 0.

/// Measures elapsed wall time from its creation.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    start: std::time::Instant,
}

impl Stopwatch {
    /// Starts a stopwatch.
    pub fn start() -> Self {
        Stopwatch {
            #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
            start: std::time::Instant::now(),
        }
    }

    /// Milliseconds since the start.
    pub fn ms(&self) -> f64 {
        #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
        {
            self.start.elapsed().as_secs_f64() * 1e3
        }
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        {
            0.0
        }
    }

    /// Milliseconds since the start, and restarts.
    pub fn lap(&mut self) -> f64 {
        let ms = self.ms();
        *self = Stopwatch::start();
        ms
    }
}

/// Rounds milliseconds to microseconds, so responses do not carry float noise.
pub(crate) fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}
