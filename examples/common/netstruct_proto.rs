//! The protocol of `netstruct_server` and `netstruct_client`: two
//! `#[derive(NetStruct)]` structs and their codes. Both examples include it
//! with `#[path = "common/netstruct_proto.rs"] mod proto;`.

use pants::NetStruct;

/// A request: netstruct format `"!IBH$I$"`.
#[derive(NetStruct, Debug)]
pub struct Request<'a> {
    /// Chosen by the client, echoed in the response.
    pub id: u32,
    /// One of the `OP_*` codes.
    pub op: u8,
    #[netstruct(len = u16)]
    pub key: &'a str,
    /// The value to store (SET); empty for the other operations. At most
    /// `MAX_VALUE` bytes: a longer one is refused when its prefix is read.
    #[netstruct(len = u32, max = MAX_VALUE)]
    pub value: &'a [u8],
}

/// A response: netstruct format `"!IBI$"`.
#[derive(NetStruct, Debug)]
pub struct Response<'a> {
    pub id: u32,
    /// One of the `STATUS_*` codes.
    pub status: u8,
    /// GET: the value; SET and DEL: the previous value, if any.
    #[netstruct(len = u32)]
    pub value: &'a [u8],
}

pub const OP_GET: u8 = 1;
pub const OP_SET: u8 = 2;
pub const OP_DEL: u8 = 3;

pub const STATUS_OK: u8 = 0;
pub const STATUS_NOT_FOUND: u8 = 1;
pub const STATUS_BAD_OP: u8 = 2;

/// The largest value the server stores: a request announcing a longer one is
/// refused as soon as its length prefix arrives, before anything is buffered
/// for it.
pub const MAX_VALUE: usize = 1 << 20;
