//! A progress bar on stderr for training and evaluation, fed by `recdb::ProgressSink`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Draws job progress on stderr; draws nothing when stderr is not a terminal.
pub struct Bar {
    pb: ProgressBar,
}

const SCALE: u64 = 1000;

/// The job's message carries its step (`epoch 3/20`); the bar adds the time so far and
/// the time left at the rate so far.
const TEMPLATE: &str =
    "{prefix:.bold} [{bar:30.cyan/blue}] {percent:>3}% {elapsed:>4} eta {eta:>4} {wide_msg}";

impl Bar {
    pub fn new(prefix: &str) -> Bar {
        // A command the server runs for a client draws no bar on the server's terminal.
        let pb = if std::io::stderr().is_terminal() && !crate::pipe::capturing() {
            let pb = ProgressBar::new(SCALE);
            let style = ProgressStyle::with_template(TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            pb.set_style(style);
            pb.set_prefix(prefix.to_owned());
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        } else {
            ProgressBar::hidden()
        };
        Bar { pb }
    }

    /// Remove the bar from the terminal.
    pub fn finish(&self) {
        self.pb.finish_and_clear();
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if !self.pb.is_finished() {
            self.pb.finish_and_clear();
        }
    }
}

impl recdb::ProgressSink for Bar {
    fn report(&self, fraction: f64, message: &str) {
        let f = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.pb.set_position((f * SCALE as f64).round() as u64);
        self.pb.set_message(message.to_owned());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bar_shows_the_time_left() {
        let style = indicatif::ProgressStyle::with_template(super::TEMPLATE).unwrap();
        let pb = indicatif::ProgressBar::hidden();
        pb.set_style(style);
        assert!(super::TEMPLATE.contains("{eta"));
        assert!(super::TEMPLATE.contains("{wide_msg}"));
    }
}
