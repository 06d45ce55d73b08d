#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| whispercms_fuzz::cedar_policies(data));
