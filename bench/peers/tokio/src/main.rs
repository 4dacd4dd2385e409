// SPDX-License-Identifier: MIT
//
// Tokio's side of bench/peers/run.sh: weft-bench's core workloads, as
// shared/PEERS.md measured them.
//
//     peer-tokio spawn|yield|mutex|channel|pingpong WORKERS
//
// spawn: 1,000,000 tasks each bump an atomic; keep every JoinHandle, then
// await them all. yield: 1,000 tasks x 1,000 yield_now(). mutex: 1,000
// tasks x 1,000 lock/unlock of one tokio::sync::Mutex. channel: 4
// producers x 1,000,000 messages into one mpsc channel of capacity 1024,
// one consumer (M msg/s). pingpong: a token back and forth over two mpsc
// channels of capacity 1, 1,000,000 round trips. Multi-thread runtime with
// WORKERS workers. Prints one JSON line, like weft-bench.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn usage() -> ! {
    eprintln!("usage: peer-tokio spawn|yield|mutex|channel|pingpong WORKERS");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        usage();
    }
    let what = args[1].clone();
    let workers: usize = match args[2].parse() {
        Ok(w) if w > 0 => w,
        _ => usage(),
    };
    if !["spawn", "yield", "mutex", "channel", "pingpong"].contains(&what.as_str()) {
        usage();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .expect("tokio runtime");
    let (ns, unit) = rt.block_on(async move {
        if what == "mutex" {
            let (n, m) = (1000u64, 1000u64);
            let mu = Arc::new(tokio::sync::Mutex::new(0u64));
            let t0 = Instant::now();
            let mut hs = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let mu = mu.clone();
                hs.push(tokio::spawn(async move {
                    for _ in 0..m {
                        *mu.lock().await += 1;
                    }
                }));
            }
            for h in hs {
                h.await.expect("task");
            }
            let ns = t0.elapsed().as_nanos() as f64 / (n * m) as f64;
            assert_eq!(*mu.lock().await, n * m, "lost a lock");
            (ns, "ns/lock")
        } else if what == "channel" {
            let (p, n) = (4u64, 1_000_000u64);
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1024);
            let t0 = Instant::now();
            let consumer = tokio::spawn(async move {
                let mut sum = 0u64;
                while let Some(v) = rx.recv().await {
                    sum += v;
                }
                sum
            });
            let mut hs = Vec::new();
            for _ in 0..p {
                let tx = tx.clone();
                hs.push(tokio::spawn(async move {
                    for k in 1..=n {
                        tx.send(k).await.expect("send");
                    }
                }));
            }
            drop(tx);
            for h in hs {
                h.await.expect("producer");
            }
            let sum = consumer.await.expect("consumer");
            let secs = t0.elapsed().as_secs_f64();
            assert_eq!(sum, p * n * (n + 1) / 2, "lost a message");
            ((p * n) as f64 / secs / 1e6, "Mmsg/s")
        } else if what == "pingpong" {
            let n = 1_000_000u64;
            let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let ponger = tokio::spawn(async move {
                while let Some(v) = ping_rx.recv().await {
                    if pong_tx.send(v + 1).await.is_err() {
                        break;
                    }
                }
            });
            let pinger = tokio::spawn(async move {
                let t0 = Instant::now();
                for k in 0..n {
                    ping_tx.send(k).await.expect("ping");
                    assert_eq!(pong_rx.recv().await, Some(k + 1), "wrong reply");
                }
                t0.elapsed().as_nanos() as f64 / n as f64
            });
            let ns = pinger.await.expect("pinger");
            ponger.await.expect("ponger");
            (ns, "ns/rt")
        } else if what == "spawn" {
            let n = 1_000_000u64;
            let c = Arc::new(AtomicU64::new(0));
            let t0 = Instant::now();
            let mut hs = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let c = c.clone();
                hs.push(tokio::spawn(async move {
                    c.fetch_add(1, Ordering::Relaxed);
                }));
            }
            for h in hs {
                h.await.expect("task");
            }
            let ns = t0.elapsed().as_nanos() as f64 / n as f64;
            assert_eq!(c.load(Ordering::Relaxed), n, "lost a task");
            (ns, "ns/task")
        } else {
            let (n, m) = (1000u64, 1000u64);
            let t0 = Instant::now();
            let mut hs = Vec::with_capacity(n as usize);
            for _ in 0..n {
                hs.push(tokio::spawn(async move {
                    for _ in 0..m {
                        tokio::task::yield_now().await;
                    }
                }));
            }
            for h in hs {
                h.await.expect("task");
            }
            (t0.elapsed().as_nanos() as f64 / (n * m) as f64, "ns/yield")
        }
    });
    println!(
        "{{\"workload\":\"{}\",\"workers\":{},\"value\":{:.3},\"unit\":\"{}\",\"runtime\":\"tokio\"}}",
        args[1], workers, ns, unit
    );
}
