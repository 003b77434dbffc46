package metrics

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The runtime/metrics values the go_* families are made of.
const (
	rmHeapObjectsBytes = iota
	rmHeapUnusedBytes
	rmHeapFreeBytes
	rmHeapReleasedBytes
	rmHeapStacksBytes
	rmOSStacksBytes
	rmMSpanInuseBytes
	rmMSpanFreeBytes
	rmMCacheInuseBytes
	rmMCacheFreeBytes
	rmBucketsBytes
	rmMetadataOtherBytes
	rmOtherBytes
	rmTotalBytes
	rmAllocsBytes
	rmAllocsObjects
	rmTinyAllocsObjects
	rmFreesObjects
	rmHeapObjects
	rmHeapGoalBytes
	rmGOGC
	rmMemLimit
	rmGOMAXPROCS
	rmCount
)

var rmNames = [rmCount]string{
	rmHeapObjectsBytes:   "/memory/classes/heap/objects:bytes",
	rmHeapUnusedBytes:    "/memory/classes/heap/unused:bytes",
	rmHeapFreeBytes:      "/memory/classes/heap/free:bytes",
	rmHeapReleasedBytes:  "/memory/classes/heap/released:bytes",
	rmHeapStacksBytes:    "/memory/classes/heap/stacks:bytes",
	rmOSStacksBytes:      "/memory/classes/os-stacks:bytes",
	rmMSpanInuseBytes:    "/memory/classes/metadata/mspan/inuse:bytes",
	rmMSpanFreeBytes:     "/memory/classes/metadata/mspan/free:bytes",
	rmMCacheInuseBytes:   "/memory/classes/metadata/mcache/inuse:bytes",
	rmMCacheFreeBytes:    "/memory/classes/metadata/mcache/free:bytes",
	rmBucketsBytes:       "/memory/classes/profiling/buckets:bytes",
	rmMetadataOtherBytes: "/memory/classes/metadata/other:bytes",
	rmOtherBytes:         "/memory/classes/other:bytes",
	rmTotalBytes:         "/memory/classes/total:bytes",
	rmAllocsBytes:        "/gc/heap/allocs:bytes",
	rmAllocsObjects:      "/gc/heap/allocs:objects",
	rmTinyAllocsObjects:  "/gc/heap/tiny/allocs:objects",
	rmFreesObjects:       "/gc/heap/frees:objects",
	rmHeapObjects:        "/gc/heap/objects:objects",
	rmHeapGoalBytes:      "/gc/heap/goal:bytes",
	rmGOGC:               "/gc/gogc:percent",
	rmMemLimit:           "/gc/gomemlimit:bytes",
	rmGOMAXPROCS:         "/sched/gomaxprocs:threads",
}

// goStats are client_golang's go_memstats_* and runtime/metrics families
// (same names, types and help), each the sum of runtime/metrics values:
// read without stopping the world, unlike runtime.ReadMemStats.
var goStats = []struct {
	name, typ, help string
	sum             []int
}{
	{"go_memstats_alloc_bytes", gauge, "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", []int{rmHeapObjectsBytes}},
	{"go_memstats_alloc_bytes_total", counter, "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", []int{rmAllocsBytes}},
	{"go_memstats_buck_hash_sys_bytes", gauge, "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", []int{rmBucketsBytes}},
	{"go_memstats_frees_total", counter, "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", []int{rmFreesObjects, rmTinyAllocsObjects}},
	{"go_memstats_gc_sys_bytes", gauge, "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", []int{rmMetadataOtherBytes}},
	{"go_memstats_heap_alloc_bytes", gauge, "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", []int{rmHeapObjectsBytes}},
	{"go_memstats_heap_idle_bytes", gauge, "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", []int{rmHeapReleasedBytes, rmHeapFreeBytes}},
	{"go_memstats_heap_inuse_bytes", gauge, "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", []int{rmHeapObjectsBytes, rmHeapUnusedBytes}},
	{"go_memstats_heap_objects", gauge, "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", []int{rmHeapObjects}},
	{"go_memstats_heap_released_bytes", gauge, "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", []int{rmHeapReleasedBytes}},
	{"go_memstats_heap_sys_bytes", gauge, "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", []int{rmHeapObjectsBytes, rmHeapUnusedBytes, rmHeapReleasedBytes, rmHeapFreeBytes}},
	{"go_memstats_mallocs_total", counter, "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", []int{rmAllocsObjects, rmTinyAllocsObjects}},
	{"go_memstats_mcache_inuse_bytes", gauge, "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", []int{rmMCacheInuseBytes}},
	{"go_memstats_mcache_sys_bytes", gauge, "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", []int{rmMCacheInuseBytes, rmMCacheFreeBytes}},
	{"go_memstats_mspan_inuse_bytes", gauge, "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", []int{rmMSpanInuseBytes}},
	{"go_memstats_mspan_sys_bytes", gauge, "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", []int{rmMSpanInuseBytes, rmMSpanFreeBytes}},
	{"go_memstats_next_gc_bytes", gauge, "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", []int{rmHeapGoalBytes}},
	{"go_memstats_other_sys_bytes", gauge, "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", []int{rmOtherBytes}},
	{"go_memstats_stack_inuse_bytes", gauge, "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", []int{rmHeapStacksBytes}},
	{"go_memstats_stack_sys_bytes", gauge, "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", []int{rmHeapStacksBytes, rmOSStacksBytes}},
	{"go_memstats_sys_bytes", gauge, "Number of bytes obtained from system. Equals to /memory/classes/total:bytes.", []int{rmTotalBytes}},
	{"go_gc_gogc_percent", gauge, "Heap size target percentage configured by the user, otherwise 100. This value is set by the GOGC environment variable, and the runtime/debug.SetGCPercent function. Sourced from /gc/gogc:percent.", []int{rmGOGC}},
	{"go_gc_gomemlimit_bytes", gauge, "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.", []int{rmMemLimit}},
	{"go_sched_gomaxprocs_threads", gauge, "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.", []int{rmGOMAXPROCS}},
}

// goReader holds what reading the runtime's figures reuses from one scrape
// to the next.
type goReader struct {
	rm [rmCount]metrics.Sample
	gc debug.GCStats
}

func newGoReader() *goReader {
	g := &goReader{}
	for i := range g.rm {
		g.rm[i].Name = rmNames[i]
	}
	g.gc.PauseQuantiles = make([]time.Duration, 5)
	return g
}

// write appends the Go runtime's families, as client_golang's Go collector
// names them.
func (g *goReader) write(e *expo) {
	e.family("go_goroutines", gauge, "Number of goroutines that currently exist.").sample(float64(runtime.NumGoroutine()))
	threads, _ := runtime.ThreadCreateProfile(nil)
	e.family("go_threads", gauge, "Number of OS threads created.").sample(float64(threads))
	e.family("go_info", gauge, "Information about the Go environment.").sample(1, "version", runtime.Version())

	// Pauses: the minimum, the quartiles and the maximum of the last 256.
	debug.ReadGCStats(&g.gc)
	e.family("go_gc_duration_seconds", summary, "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.")
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		e.sample(g.gc.PauseQuantiles[i].Seconds(), "quantile", q)
	}
	e.series("_sum", nil, g.gc.PauseTotal.Seconds())
	e.series("_count", nil, float64(g.gc.NumGC))
	e.family("go_memstats_last_gc_time_seconds", gauge, "Number of seconds since 1970 of last garbage collection.").
		sample(float64(g.gc.LastGC.UnixNano()) / 1e9)

	metrics.Read(g.rm[:])
stats:
	for _, s := range goStats {
		var v uint64
		for _, i := range s.sum {
			if g.rm[i].Value.Kind() != metrics.KindUint64 {
				continue stats // not in this Go version
			}
			v += g.rm[i].Value.Uint64()
		}
		e.family(s.name, s.typ, s.help).sample(float64(v))
	}
}

// userHZ is the unit of the CPU times in /proc (USER_HZ, 100 on every
// Linux architecture Go supports).
const userHZ = 100

// bootTime is when the system booted, in Unix seconds (0 if unknown).
var bootTime = sync.OnceValue(func() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			t, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return t
		}
	}
	return 0
})

// writeProcess appends the process's families, as client_golang's process
// collector names them, from /proc (Linux). What cannot be read is left out.
func writeProcess(e *expo) {
	if f := procStat(); len(f) > 21 {
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		start, _ := strconv.ParseFloat(f[19], 64)
		vsize, _ := strconv.ParseFloat(f[20], 64)
		rss, _ := strconv.ParseFloat(f[21], 64)
		e.family("process_cpu_seconds_total", counter, "Total user and system CPU time spent in seconds.").sample((utime + stime) / userHZ)
		e.family("process_virtual_memory_bytes", gauge, "Virtual memory size in bytes.").sample(vsize)
		e.family("process_resident_memory_bytes", gauge, "Resident memory size in bytes.").sample(rss * float64(os.Getpagesize()))
		if boot := bootTime(); boot > 0 {
			e.family("process_start_time_seconds", gauge, "Start time of the process since unix epoch in seconds.").sample(boot + start/userHZ)
		}
	}
	if n, err := openFDs(); err == nil {
		e.family("process_open_fds", gauge, "Number of open file descriptors.").sample(float64(n))
	}
	// The soft limits, as /proc/self/limits shows them (unlimited: 2^64-1).
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		e.family("process_max_fds", gauge, "Maximum number of open file descriptors.").sample(float64(lim.Cur))
	}
	if syscall.Getrlimit(syscall.RLIMIT_AS, &lim) == nil {
		e.family("process_virtual_memory_max_bytes", gauge, "Maximum amount of virtual memory available in bytes.").sample(float64(lim.Cur))
	}
}

// procStat returns the fields of /proc/self/stat that follow the command
// name: the first is the state, field 3 in proc(5).
func procStat() []string {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// openFDs counts the entries of /proc/self/fd (the one reading it
// included, as client_golang counts), a batch of names at a time.
func openFDs() (int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(512)
		n += len(names)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
