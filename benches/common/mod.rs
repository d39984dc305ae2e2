//! The reusable parts of the load generator: a y-websocket client, the servers under test, the
//! editing traces, measurement of time, CPU and memory, and the results table.

pub mod client;
pub mod measure;
pub mod report;
pub mod servers;
pub mod trace;
