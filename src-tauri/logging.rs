//! Logging with `tracing`: to stderr and to a daily-rotated file in the OS log dir. Every line goes
//! through `mask_phones` on its way out, so no full phone number reaches a log whatever a caller
//! formats into it.

use std::io::{self, Write};
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    // 2547XXXXXXXX / 2541… / 255… / 256… with or without '+', and Kenyan 07…/01… national numbers.
    Regex::new(r"(?:\b(25[456])(\d)(\d{5})(\d{3})\b)|(?:\b(0[17])(\d{5})(\d{3})\b)").unwrap()
});

/// Replaces each phone number in `line` with its masked form (`2547•••••123`).
pub fn mask_phones(line: &str) -> std::borrow::Cow<'_, str> {
    PHONE.replace_all(line, |c: &regex::Captures| {
        if let Some(cc) = c.get(1) {
            format!("{}{}•••••{}", cc.as_str(), &c[2], &c[4])
        } else {
            format!("{}•••••{}", &c[5], &c[7])
        }
    })
}

/// A writer that masks phone numbers before passing bytes on. tracing's fmt layer writes one event
/// per `write_all`, so a whole line is masked at once.
pub struct Masking<W>(W);

impl<W: Write> Write for Masking<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(mask_phones(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

pub struct MaskingMakeWriter<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MaskingMakeWriter<M> {
    type Writer = Masking<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        Masking(self.0.make_writer())
    }
}

/// Keeps the file writer flushing until dropped; hold it for the life of the process.
pub struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Installs the global subscriber: stderr, plus `malipo.log.YYYY-MM-DD` files in `log_dir` (kept 14 days).
/// `MALIPO_LOG` sets the filter (default `info`).
pub fn init(log_dir: Option<&Path>) -> LogGuard {
    let filter = || EnvFilter::try_from_env("MALIPO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer().with_writer(MaskingMakeWriter(io::stderr)).with_filter(filter());
    let (file_layer, guard) = match log_dir.and_then(|dir| {
        std::fs::create_dir_all(dir).ok()?;
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("malipo.log")
            .max_log_files(14)
            .build(dir)
            .ok()
    }) {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(MaskingMakeWriter(writer)).with_filter(filter());
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry().with(stderr).with(file_layer).try_init();
    LogGuard(guard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn phone_numbers_are_masked_in_every_form() {
        assert_eq!(mask_phones("to 254712345678 ok"), "to 2547•••••678 ok");
        assert_eq!(mask_phones("to +254712345678"), "to +2547•••••678");
        assert_eq!(mask_phones("to 0712345678."), "to 07•••••678.");
        assert_eq!(mask_phones("tz 255754123456 ug 256772123456"), "tz 2557•••••456 ug 2567•••••456");
        // Amounts, invoice numbers and receipts are left alone.
        assert_eq!(mask_phones("KES 2500 for INV-1042 receipt NLJ7RT61SV"), "KES 2500 for INV-1042 receipt NLJ7RT61SV");
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_line_with_a_phone_number_is_written_masked() {
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(MaskingMakeWriter(move || sink.clone()))
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(phone = "254712345678", "sending STK push to 0712345678");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("2547•••••678") && out.contains("07•••••678"), "{out}");
        assert!(!out.contains("12345678"), "{out}");
    }
}
