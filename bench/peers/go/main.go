// SPDX-License-Identifier: MIT
//
// Go's side of bench/peers/run.sh: weft-bench's core workloads
// (bench/bench_core.c, bench/bench_sync.c) as shared/PEERS.md measured
// them, so that Go and weft can be compared in one run on one machine.
//
//	peer-go spawn|yield|mutex|channel|pingpong WORKERS
//
// spawn: 1,000,000 goroutines each bump an atomic; wait for all (Go has no
// join handles: a WaitGroup is its join). yield: 1,000 goroutines x 1,000
// runtime.Gosched(). mutex: 1,000 goroutines x 1,000 lock/unlock of one
// sync.Mutex. channel: 4 producers x 1,000,000 messages into one channel
// of capacity 1024, one consumer (M msg/s). pingpong: a token back and
// forth over two channels of capacity 1, 1,000,000 round trips. Prints one
// JSON line, like weft-bench.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: peer-go spawn|yield|mutex|channel|pingpong WORKERS")
		os.Exit(2)
	}
	w, err := strconv.Atoi(os.Args[2])
	if err != nil || w < 1 {
		fmt.Fprintln(os.Stderr, "peer-go: WORKERS must be a positive number")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(w)
	var wg sync.WaitGroup
	var ns float64
	unit := "ns/task"
	switch os.Args[1] {
	case "spawn":
		const n = 1000000
		var c uint64
		t0 := time.Now()
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() { atomic.AddUint64(&c, 1); wg.Done() }()
		}
		wg.Wait()
		ns = float64(time.Since(t0).Nanoseconds()) / n
		if atomic.LoadUint64(&c) != n {
			fmt.Fprintln(os.Stderr, "peer-go: lost a task")
			os.Exit(1)
		}
	case "yield":
		const n, m = 1000, 1000
		unit = "ns/yield"
		t0 := time.Now()
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				for j := 0; j < m; j++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		ns = float64(time.Since(t0).Nanoseconds()) / (n * m)
	case "mutex":
		const n, m = 1000, 1000
		var mu sync.Mutex
		count := 0
		unit = "ns/lock"
		t0 := time.Now()
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				for j := 0; j < m; j++ {
					mu.Lock()
					count++
					mu.Unlock()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		ns = float64(time.Since(t0).Nanoseconds()) / (n * m)
		if count != n*m {
			fmt.Fprintln(os.Stderr, "peer-go: lost a lock")
			os.Exit(1)
		}
	case "channel":
		const p, n = 4, 1000000
		c := make(chan uint64, 1024)
		var sum uint64
		done := make(chan struct{})
		unit = "Mmsg/s"
		t0 := time.Now()
		go func() {
			for v := range c {
				sum += v
			}
			close(done)
		}()
		wg.Add(p)
		for i := 0; i < p; i++ {
			go func() {
				for k := uint64(1); k <= n; k++ {
					c <- k
				}
				wg.Done()
			}()
		}
		wg.Wait()
		close(c)
		<-done
		ns = float64(p*n) / float64(time.Since(t0).Nanoseconds()) * 1e3
		if sum != p*n*(n+1)/2 {
			fmt.Fprintln(os.Stderr, "peer-go: lost a message")
			os.Exit(1)
		}
	case "pingpong":
		const n = 1000000
		ping, pong := make(chan uint64, 1), make(chan uint64, 1)
		unit = "ns/rt"
		go func() {
			for v := range ping {
				pong <- v + 1
			}
			close(pong)
		}()
		t0 := time.Now()
		for k := uint64(0); k < n; k++ {
			ping <- k
			if <-pong != k+1 {
				fmt.Fprintln(os.Stderr, "peer-go: wrong reply")
				os.Exit(1)
			}
		}
		ns = float64(time.Since(t0).Nanoseconds()) / n
		close(ping)
	default:
		fmt.Fprintln(os.Stderr, "peer-go: unknown workload", os.Args[1])
		os.Exit(2)
	}
	fmt.Printf("{\"workload\":\"%s\",\"workers\":%d,\"value\":%.3f,\"unit\":\"%s\",\"runtime\":\"go\"}\n",
		os.Args[1], w, ns, unit)
}
