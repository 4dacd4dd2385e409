// SPDX-License-Identifier: MIT
//
// Tokio's side of bench/peers/run.sh: the spawn and yield workloads of
// weft-bench, as shared/PEERS.md measured them.
//
//     peer-tokio spawn|yield WORKERS
//
// spawn: 1,000,000 tasks each bump an atomic; keep every JoinHandle, then
// await them all. yield: 1,000 tasks x 1,000 yield_now(). Multi-thread
// runtime with WORKERS workers. Prints one JSON line, like weft-bench.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn usage() -> ! {
    eprintln!("usage: peer-tokio spawn|yield WORKERS");
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
    if what != "spawn" && what != "yield" {
        usage();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .expect("tokio runtime");
    let (ns, unit) = rt.block_on(async move {
        if what == "spawn" {
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
