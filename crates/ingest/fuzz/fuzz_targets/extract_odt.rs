//! Any bytes given to the OpenDocument text extractor: an error or pages, never a
//! crash, a hang or unbounded memory (zip bombs included: parts are read within
//! the package caps).
#![no_main]

use docchat_core::FileKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // Panics that the extractor catches are reasons, not findings; one that
        // escapes still aborts the run.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        if let Ok(extracted) = docchat_ingest::extract_bytes(FileKind::Odt, data) {
            assert!(extracted.pages.iter().all(|p| p.number >= 1));
        }
    }
);
