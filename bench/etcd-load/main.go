// etcd-load: the etcd side of census-bench. Same load shape: closed loop, one connection per
// client, 16-byte values, 100 keys per client (or -value-bytes and -keys shared by all clients);
// put, serializable get (like ?stale) and linearizable get (like ?consistent). Prints one RESULT
// line, and with -window one WINDOW line per window (throughput, tail latency, and the RSS of
// the -pids processes at its end).
//
// Build (Debian packages golang-go and golang-etcd-server-dev, offline, GOPATH mode):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o target/etcd-load ./bench/etcd-load
package main

import (
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client URLs")
	clients := flag.Int("clients", 1, "concurrent clients, one connection each")
	seconds := flag.Float64("seconds", 3, "measurement time")
	op := flag.String("op", "put", "put | get-stale | get-consistent | gap | fanout")
	watchers := flag.Int("watchers", 1000, "fanout: watchers, one client connection each")
	rounds := flag.Int("rounds", 10, "fanout: rounds")
	shared := flag.Bool("shared", false, "fanout: all watchers on one client connection (gRPC streams)")
	since := flag.Int64("since", 0, "gap: the Unix time in nanoseconds the leader was killed")
	valueBytes := flag.Int("value-bytes", 16, "bytes per value")
	keys := flag.Int("keys", 0, "keys shared by all clients (0: 100 per client)")
	window := flag.Float64("window", 0, "seconds per WINDOW line (0: none)")
	pids := flag.String("pids", "", "comma-separated server pids whose RSS the WINDOW lines report")
	flag.Parse()
	value := strings.Repeat("v", *valueBytes)
	if *op == "gap" {
		writeGap(strings.Split(*endpoints, ","), *since)
		return
	}
	if *op == "fanout" {
		fanout(strings.Split(*endpoints, ","), *watchers, *rounds, *shared)
		return
	}

	var stop int32
	var errors int64
	lat := make([][]time.Duration, *clients)
	at := make([][]time.Duration, *clients) // when each operation ended, since began
	began := time.Now()
	var wg sync.WaitGroup
	eps := strings.Split(*endpoints, ",")
	for w := 0; w < *clients; w++ {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{eps[w%len(eps)]}, DialTimeout: 5 * time.Second})
		if err != nil {
			panic(err)
		}
		defer cli.Close()
		wg.Add(1)
		go func(w int, cli *clientv3.Client) {
			defer wg.Done()
			for i := 0; atomic.LoadInt32(&stop) == 0; i++ {
				key := fmt.Sprintf("bench/%d/%d", w, i%100)
				if *keys > 0 {
					key = fmt.Sprintf("bench/%d", (w*7919+i)%*keys)
				}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var err error
				switch *op {
				case "put":
					_, err = cli.Put(ctx, key, value)
				case "get-stale":
					_, err = cli.Get(ctx, key, clientv3.WithSerializable())
				default:
					_, err = cli.Get(ctx, key)
				}
				cancel()
				if err != nil {
					atomic.AddInt64(&errors, 1)
					continue
				}
				lat[w] = append(lat[w], time.Since(start))
				at[w] = append(at[w], time.Since(began))
			}
		}(w, cli)
	}
	var rss []string
	if *window > 0 {
		for t := *window; t <= *seconds+1e-9; t += *window {
			time.Sleep(time.Until(began.Add(time.Duration(t * float64(time.Second)))))
			rss = append(rss, rssKiB(*pids))
		}
	}
	time.Sleep(time.Until(began.Add(time.Duration(*seconds * float64(time.Second)))))
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	elapsed := time.Since(began).Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	pct := percentiles(all)
	fmt.Printf("RESULT system=etcd op=%s clients=%d ops_s=%.0f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f errors=%d\n",
		*op, *clients, float64(len(all))/elapsed, pct(0.5), pct(0.99), pct(0.999), pct(1), errors)
	for i, r := range rss {
		from, to := time.Duration(float64(i)**window*float64(time.Second)), time.Duration(float64(i+1)**window*float64(time.Second))
		var in []time.Duration
		for w := range lat {
			for j, t := range at[w] {
				if t >= from && t < to {
					in = append(in, lat[w][j])
				}
			}
		}
		q := percentiles(in)
		fmt.Printf("WINDOW system=etcd op=%s clients=%d t_s=%.0f ops_s=%.0f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f rss_kib=%s\n",
			*op, *clients, to.Seconds(), float64(len(in))/(*window), q(0.5), q(0.99), q(0.999), q(1), r)
	}
}

// percentiles sorts the latencies and returns their p-th percentile in milliseconds (0 if none).
func percentiles(lat []time.Duration) func(p float64) float64 {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000
	}
}

// rssKiB is the VmRSS of each pid, comma-separated.
func rssKiB(pids string) string {
	var out []string
	for _, pid := range strings.Split(pids, ",") {
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		status, err := ioutil.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			out = append(out, "?")
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				out = append(out, strings.Fields(line)[1])
			}
		}
	}
	return strings.Join(out, ",")
}

// writeGap retries one put through the given (surviving) members, each attempt with a 100 ms
// timeout, and prints the time from `since` (the SIGKILL of the leader) to the first success.
func writeGap(endpoints []string, since int64) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := cli.Put(ctx, fmt.Sprintf("gap/%d", attempt), "x")
		cancel()
		if err == nil {
			gap := time.Since(time.Unix(0, since))
			fmt.Printf("RESULT system=etcd op=gap gap_ms=%d attempts=%d\n", gap.Milliseconds(), attempt+1)
			return
		}
		if time.Since(time.Unix(0, since)) > 30*time.Second {
			fmt.Printf("RESULT system=etcd op=gap gap_ms=timeout attempts=%d\n", attempt+1)
			return
		}
	}
}

// fanout opens `watchers` clients (one connection each, or one for all with -shared) on a follower, each watching one key,
// then puts the key through the first endpoint (the leader) and prints the time from the put's
// answer to the first and the last watcher's event, per round and the medians.
func fanout(endpoints []string, watchers, rounds int, shared bool) {
	writer, err := clientv3.New(clientv3.Config{Endpoints: endpoints[:1], DialTimeout: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	defer writer.Close()
	follower := endpoints[len(endpoints)-1]
	connections := watchers
	if shared {
		connections = 1
	}
	clients := make([]*clientv3.Client, connections)
	for i := range clients {
		clients[i], err = clientv3.New(clientv3.Config{Endpoints: []string{follower}, DialTimeout: 5 * time.Second})
		if err != nil {
			panic(err)
		}
		defer clients[i].Close()
	}
	var firsts, lasts []float64
	for round := 0; round < rounds; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		events := make(chan time.Time, watchers)
		for w := 0; w < watchers; w++ {
			ch := clients[w%connections].Watch(ctx, "fan/key")
			go func(ch clientv3.WatchChan) {
				for range ch {
					events <- time.Now()
					return
				}
			}(ch)
		}
		time.Sleep(time.Duration(500+watchers/2) * time.Millisecond)
		if _, err := writer.Put(context.Background(), "fan/key", fmt.Sprint(round)); err != nil {
			panic(err)
		}
		done := time.Now()
		first, last := 1e9, 0.0
		for i := 0; i < watchers; i++ {
			select {
			case t := <-events:
				ms := float64(t.Sub(done).Microseconds()) / 1000
				if ms < 0 {
					ms = 0
				}
				if ms < first {
					first = ms
				}
				if ms > last {
					last = ms
				}
			case <-time.After(30 * time.Second):
				i = watchers
			}
		}
		cancel()
		fmt.Printf("ROUND system=etcd op=fanout watchers=%d first_ms=%.2f last_ms=%.2f\n", watchers, first, last)
		firsts, lasts = append(firsts, first), append(lasts, last)
	}
	sort.Float64s(firsts)
	sort.Float64s(lasts)
	fmt.Printf("RESULT system=etcd op=fanout watchers=%d connections=%d first_ms=%.2f last_ms=%.2f (medians of %d)\n",
		watchers, connections, firsts[len(firsts)/2], lasts[len(lasts)/2], rounds)
}
