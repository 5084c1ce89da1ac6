//! Fuzzes the frame decoder: any byte string must decode or fail cleanly, and whatever
//! decodes must re-encode to a frame that decodes to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lisafs_proto::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok((h, req)) = codec::decode_request_frame(data) {
        let payload = req.encode().expect("a decoded request re-encodes");
        let frame = codec::encode_frame(h.request_id, h.msg_id, &payload).expect("fits");
        let (_, again) = codec::decode_request_frame(&frame).expect("re-decodes");
        assert_eq!(again, req);
    }
    if let Ok((h, resp)) = codec::decode_response_frame(data) {
        let payload = resp.encode().expect("a decoded reply re-encodes");
        let frame = codec::encode_frame(h.request_id, h.msg_id, &payload).expect("fits");
        let (_, again) = codec::decode_response_frame(&frame).expect("re-decodes");
        assert_eq!(again, resp);
    }
});
