// Until the endpoints use it.
#![allow(dead_code)]

pub(crate) mod cimd;
pub(crate) mod client;
