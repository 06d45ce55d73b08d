#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| whispercms_fuzz::upload_pack_v0(data));
