// SPDX-License-Identifier: MIT
//
// Go's side of bench/peers/run.sh: the spawn and yield workloads of
// weft-bench (bench/bench_core.c), as shared/PEERS.md measured them, so
// that Go and weft can be compared in one run on one machine.
//
//	peer-go spawn|yield WORKERS
//
// spawn: 1,000,000 goroutines each bump an atomic; wait for all (Go has no
// join handles: a WaitGroup is its join). yield: 1,000 goroutines x 1,000
// runtime.Gosched(). Prints one JSON line, like weft-bench.
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
		fmt.Fprintln(os.Stderr, "usage: peer-go spawn|yield WORKERS")
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
	default:
		fmt.Fprintln(os.Stderr, "peer-go: unknown workload", os.Args[1])
		os.Exit(2)
	}
	fmt.Printf("{\"workload\":\"%s\",\"workers\":%d,\"value\":%.3f,\"unit\":\"%s\",\"runtime\":\"go\"}\n",
		os.Args[1], w, ns, unit)
}
