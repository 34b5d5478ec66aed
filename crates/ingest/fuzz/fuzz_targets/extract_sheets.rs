//! Any bytes given to the spreadsheet extractor (calamine): an error or pages, never
//! a hang or unbounded memory. A panic inside calamine is a reason, as in
//! production, where the extraction child reports it; an abort, a hang or a memory
//! blow-up is a finding.
#![no_main]

use docchat_core::FileKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        let outcome = std::panic::catch_unwind(|| {
            docchat_ingest::extract_bytes(FileKind::Spreadsheet, data)
        });
        if let Ok(Ok(extracted)) = outcome {
            assert!(extracted.pages.iter().all(|p| p.number >= 1));
        }
    }
);
