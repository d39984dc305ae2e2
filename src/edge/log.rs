//! Writes [`crate::log`] lines to the console, one JSON object per line, with the console
//! method of their level, so that `wrangler tail` and Workers Logs keep the level. `wrangler
//! dev` at `--log-level info` (the end-to-end tests') prints `console.warn` and
//! `console.error` only; at `log`, its default, the worker's `console.log` too.

use super::platform;
use crate::log::Level;
pub use crate::log::{debug, error, info, warn, Line};

/// Writing a line.
pub trait Emit {
    /// Writes the line now, at its level.
    fn emit(self);
}

impl Emit for Line {
    fn emit(self) {
        let text = self.render(platform::now_ms());
        match self.level() {
            Level::Debug => worker::console_debug!("{text}"),
            Level::Info => worker::console_log!("{text}"),
            Level::Warn => worker::console_warn!("{text}"),
            Level::Error => worker::console_error!("{text}"),
        }
    }
}
