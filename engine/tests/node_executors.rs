//! The application API from a foreign executor: a tokio runtime (not the engine's runtime)
//! sends, receives, requests and responds concurrently from several tasks.

use bytes::Bytes;
use ringwire::router::Envelope;
use ringwire_test_support::node::*;

#[test]
fn the_api_runs_on_a_tokio_runtime() {
    let desc = chan(0x20, 1, 1 << 20);
    let a = builder(1).channel(desc.clone()).start().unwrap();
    let b = builder(2).channel(desc.clone()).start().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        a.connect_memory(&b).await.expect("connect");
        let ca = a.open_channel(desc.clone()).unwrap();
        let mut cb = b.open_channel(desc.clone()).unwrap();
        let b_id = b.node_id();
        // b answers requests and counts plain messages in its own task.
        let server = tokio::spawn(async move {
            let (mut plain, mut requests) = (0, 0);
            while plain < 100 || requests < 20 {
                let m = cb.recv_until(secs(10)).await.expect("message");
                match m.request.clone() {
                    Some(req) => {
                        cb.respond(req, m.payload).expect("respond");
                        requests += 1;
                    }
                    None => plain += 1,
                }
            }
            plain
        });
        let sender = ca.sender();
        let plain = tokio::spawn(async move {
            for i in 0..100u32 {
                let p = Bytes::from(i.to_le_bytes().to_vec());
                sender
                    .send(Envelope::peer(b_id, p), secs(10))
                    .await
                    .unwrap();
            }
        });
        for i in 0..20u32 {
            let q = Bytes::from(format!("echo {i}"));
            let r = ca.request(b_id, q.clone(), secs(10)).await.unwrap();
            assert_eq!(r, q);
        }
        plain.await.unwrap();
        assert_eq!(server.await.unwrap(), 100);
        a.shutdown(secs(5)).await;
        b.shutdown(secs(5)).await;
    });
}
