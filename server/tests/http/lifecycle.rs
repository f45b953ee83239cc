//! Process lifecycle: graceful shutdown.

use crate::support::{ServerOptions, TestServer};
use std::time::Duration;

#[tokio::test]
async fn sigterm_exits_zero_promptly_even_with_an_idle_keep_alive_connection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(tmp.path(), ServerOptions::default()).await;
    // The client keeps its connection open after this request.
    server.get("/ready").await.assert(200, 1000);

    let (status, took) = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}
