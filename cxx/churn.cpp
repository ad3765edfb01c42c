// churn.cpp: the bare C++ control of allocstudy.
//
// The same fragmenting churn as the service's /churn endpoint, without Python: T threads keep
// one bounded live set of mixed-size buffers (sizes uniform over [min, max]) and, for a fixed
// time, allocate a new buffer, touch every page of it, and let it replace one random survivor,
// which is freed. The allocator is swapped with LD_PRELOAD; this program never changes.
//
// Output: one JSON object per line on stdout, flushed at once, so a driver can timestamp the
// phases as they happen:
//   {"event":"phase","phase":"fill|churn|idle|done","t_s":..,"mono_s":..}
//   {"event":"result",...}   (last line; fields at the end of main)
// t_s is seconds since the program started; mono_s is the raw CLOCK_MONOTONIC reading, the
// clock Python's time.monotonic() reads, so a driver can place phases on its own timeline.
//
// With --stats-log FILE a thread of its own also appends, every --stats-every-s seconds and
// at each phase change from the churn's start to the end of the idle rest, one JSON line of
// the allocator's own statistics (its native names, in bytes) beside the kernel's count of
// the process's anonymous memory; see "The statistics log" below.
//
// The result echoes the options the program really ran with (threads, live_bytes, min_bytes,
// max_bytes, seed, share, and idle_s to the last bit) so a driver can prove that its settings
// arrived, and says how many CPUs the process may run on (cpus, from sched_getaffinity): more
// threads than that means the threads take turns, and wall-clock throughput counts waiting.
// It reports the process's CPU time and page faults (getrusage(RUSAGE_SELF), all threads)
// twice: over the churn phase alone (cpu_user_s, cpu_sys_s, minor_faults, major_faults, a
// snapshot when the churn opens and one when every thread has stopped) and over the whole
// run up to the result (run_cpu_user_s, run_cpu_sys_s, run_minor_faults, run_major_faults).
// Operations per CPU-second do not count the time a thread waited for a core; operations per
// wall-second (allocs_per_s) do. Minor faults are how an allocator that returned memory to
// the kernel pays for it when it needs the memory again.
//
// Design of the live set: one array of slots, sized so that the whole set holds live_bytes on
// average; each slot is an atomic pointer. The churn has two modes (--share):
//   shard  (default) each thread churns its own contiguous share of the slots, so a buffer is
//          freed by the thread that allocated it. This mirrors the service, where each of the
//          4 workers owns its live set and frees its own survivors (one GIL per process), and
//          it needs no lock, so the throughput measures the allocator, not a mutex. The set is
//          still one set with one bounded total; the shards only say who may replace a slot.
//   global every operation replaces a random slot of the whole set (an atomic exchange, still
//          no lock), so most survivors are freed by a thread other than their allocator's.
//          Remote frees are a different, harsher workload (measured here: several times the
//          memory and a fraction of the throughput for some allocators); it is kept as an
//          exploration, not as the control.
// Either way the live set never exceeds its slots plus one buffer in flight per thread.
//
// Build by hand: c++ -O2 -std=c++17 -pthread churn.cpp -o churn -ldl  (or see CMakeLists.txt)

#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;
// One byte is written every kTouchStride bytes: every page of any size >= 4 KiB gets a write.
constexpr std::size_t kTouchStride = 4096;
constexpr unsigned kMaxThreads = 4096;

const char kUsage[] =
    "usage: churn [--threads N] [--live-bytes N] [--min-bytes N] [--max-bytes N]\n"
    "             [--seconds S] [--warmup-s S] [--idle-s S] [--seed N]\n"
    "             [--share shard|global] [--stats-log FILE [--stats-every-s S]]\n"
    "  --threads N     worker threads sharing the live set (default 4, 1..4096)\n"
    "  --live-bytes N  target bytes held live by the whole set (default 268435456)\n"
    "  --min-bytes N   smallest buffer (default 4096)\n"
    "  --max-bytes N   largest buffer (default 65536)\n"
    "  --seconds S     measured churn duration, seconds > 0 (default 20)\n"
    "  --warmup-s S    churn before the measured seconds, not counted, seconds >= 0\n"
    "                  (default 0): the heaps reach their steady state first\n"
    "  --idle-s S      rest after the churn with the live set held, seconds >= 0 (default 5)\n"
    "  --seed N        seed of the per-thread random streams (default 1)\n"
    "  --share MODE    shard: a thread replaces only its own slots (default);\n"
    "                  global: any thread replaces any slot (cross-thread frees)\n"
    "  --stats-log FILE  append one JSON line of the allocator's own statistics and the\n"
    "                  kernel's view of anonymous memory to FILE every --stats-every-s\n"
    "                  seconds and at each phase change, from the churn's start to the\n"
    "                  end of the idle rest (default: no log)\n"
    "  --stats-every-s S  seconds between two lines of --stats-log, > 0 and <= 86400\n"
    "                  (default 2; only with --stats-log)\n";

struct Options {
    unsigned threads = 4;
    std::uint64_t live_bytes = 256ull << 20;
    std::uint64_t min_bytes = 4096;
    std::uint64_t max_bytes = 65536;
    double seconds = 20.0;
    double warmup_s = 0.0;
    double idle_s = 5.0;
    std::uint64_t seed = 1;
    bool global = false;  // --share global
    std::string stats_log;  // --stats-log: empty means no statistics thread
    double stats_every_s = 2.0;
    bool stats_every_given = false;
};

[[noreturn]] void usage_error(const std::string& what) {
    std::fprintf(stderr, "churn: %s\n%s", what.c_str(), kUsage);
    std::exit(kExitUsage);
}

// A fatal error, possibly on a worker thread: _Exit skips the atexit handlers and static
// destructors that other, still running threads might be using.
[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "churn: %s\n", what);
    std::fflush(stderr);
    std::_Exit(kExitFailure);
}

// Digits only: strtoull would quietly accept "-1" (as 2^64-1), "+5", spaces or "0x10".
bool parse_u64(const char* text, std::uint64_t* out) {
    if (*text == '\0') return false;
    for (const char* p = text; *p != '\0'; ++p) {
        if (*p < '0' || *p > '9') return false;
    }
    errno = 0;
    char* end = nullptr;
    unsigned long long value = std::strtoull(text, &end, 10);
    if (errno == ERANGE || *end != '\0') return false;
    *out = value;
    return true;
}

bool parse_seconds(const char* text, double* out) {
    if (*text == '\0') return false;
    errno = 0;
    char* end = nullptr;
    double value = std::strtod(text, &end);
    if (errno == ERANGE || *end != '\0' || !std::isfinite(value)) return false;
    *out = value;
    return true;
}

Options parse_args(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        if (flag == "-h" || flag == "--help") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        }
        std::size_t eq = flag.find('=');
        const std::string name = flag.substr(0, eq);
        static const char* const kFlags[] = {"--threads", "--live-bytes", "--min-bytes",
                                             "--max-bytes", "--seconds", "--warmup-s", "--idle-s",
                                             "--seed", "--share", "--stats-log",
                                             "--stats-every-s"};
        bool known = false;
        for (const char* f : kFlags) known = known || name == f;
        if (!known) usage_error("unknown argument: " + flag);
        std::string value;
        if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = flag.substr(eq + 1);
            flag.resize(eq);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            usage_error("missing value for " + flag);
        }
        std::uint64_t n = 0;
        double s = 0.0;
        if (flag == "--threads") {
            if (!parse_u64(value.c_str(), &n)) usage_error("--threads: not a whole number: " + value);
            if (n == 0 || n > kMaxThreads) usage_error("--threads must be 1.." + std::to_string(kMaxThreads));
            opt.threads = static_cast<unsigned>(n);
        } else if (flag == "--live-bytes") {
            if (!parse_u64(value.c_str(), &n)) usage_error("--live-bytes: not a whole number: " + value);
            if (n == 0) usage_error("--live-bytes must be greater than 0");
            opt.live_bytes = n;
        } else if (flag == "--min-bytes") {
            if (!parse_u64(value.c_str(), &n)) usage_error("--min-bytes: not a whole number: " + value);
            if (n == 0) usage_error("--min-bytes must be greater than 0");
            opt.min_bytes = n;
        } else if (flag == "--max-bytes") {
            if (!parse_u64(value.c_str(), &n)) usage_error("--max-bytes: not a whole number: " + value);
            if (n == 0) usage_error("--max-bytes must be greater than 0");
            opt.max_bytes = n;
        } else if (flag == "--seconds") {
            if (!parse_seconds(value.c_str(), &s)) usage_error("--seconds: not a number: " + value);
            if (s <= 0) usage_error("--seconds must be greater than 0");
            opt.seconds = s;
        } else if (flag == "--warmup-s") {
            if (!parse_seconds(value.c_str(), &s)) usage_error("--warmup-s: not a number: " + value);
            if (s < 0) usage_error("--warmup-s must not be negative");
            opt.warmup_s = s;
        } else if (flag == "--idle-s") {
            if (!parse_seconds(value.c_str(), &s)) usage_error("--idle-s: not a number: " + value);
            if (s < 0) usage_error("--idle-s must not be negative");
            opt.idle_s = s;
        } else if (flag == "--seed") {
            if (!parse_u64(value.c_str(), &n)) usage_error("--seed: not a whole number: " + value);
            opt.seed = n;
        } else if (flag == "--share") {
            if (value != "shard" && value != "global") {
                usage_error("--share must be shard or global, not " + value);
            }
            opt.global = value == "global";
        } else if (flag == "--stats-log") {
            if (value.empty()) usage_error("--stats-log needs a file name");
            opt.stats_log = value;
        } else if (flag == "--stats-every-s") {
            if (!parse_seconds(value.c_str(), &s)) usage_error("--stats-every-s: not a number: " + value);
            if (s <= 0 || s > 86400) usage_error("--stats-every-s must be greater than 0 and at most 86400");
            opt.stats_every_s = s;
            opt.stats_every_given = true;
        } else {
            usage_error("unknown argument: " + flag);
        }
    }
    if (opt.min_bytes > opt.max_bytes) usage_error("--min-bytes must not exceed --max-bytes");
    if (opt.stats_every_given && opt.stats_log.empty()) usage_error("--stats-every-s needs --stats-log");
    // A buffer must fit in memory and in size_t arithmetic with room to spare.
    if (opt.max_bytes > (std::uint64_t{1} << 40)) usage_error("--max-bytes is too large");
    return opt;
}

// 128-bit product for the multiply-high mapping (a GCC/Clang extension on 64-bit targets).
__extension__ typedef unsigned __int128 u128;

// splitmix64 (Steele, Lea and Flood): a few multiplies per number, statistically sound enough
// for picking sizes and slots, and a one-word state that each thread keeps on its own stack
// (no shared generator, no lock, no cache line bouncing between threads).
struct Rng {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform over [0, n) by the multiply-high method: no division, negligible bias for the
    // small n used here.
    std::uint64_t below(std::uint64_t n) {
        return static_cast<std::uint64_t>((static_cast<u128>(next()) * n) >> 64);
    }
};

double mono_now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void sleep_until(double mono_deadline) {
    timespec ts{};
    double whole = std::floor(mono_deadline);
    ts.tv_sec = static_cast<time_t>(whole);
    ts.tv_nsec = static_cast<long>((mono_deadline - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

// FNV-1a style fold: cheap, order-sensitive, and it makes every written value observable.
inline std::uint64_t fold(std::uint64_t h, std::uint64_t v) {
    return (h ^ v) * 0x100000001B3ull;
}

// Write one non-zero byte in every page of the buffer (and its last byte), so the buffer is
// resident the way real data would make it; fold the values into the checksum.
inline std::uint64_t touch(unsigned char* p, std::size_t size, unsigned char seed, std::uint64_t h) {
    unsigned char v = seed;
    for (std::size_t off = 0; off < size; off += kTouchStride) {
        v = static_cast<unsigned char>(v + 1) | 1u;
        p[off] = v;
        h = fold(h, v);
    }
    p[size - 1] = v;
    return fold(h, v);
}

enum class Phase : int { fill = 0, churn = 1, done = 2 };

// The phase gate: the main thread moves the phase forward; workers wait for it, and report
// each finished step by bumping `arrived`.
struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    Phase phase = Phase::fill;
    unsigned arrived = 0;

    void arrive() {
        std::lock_guard<std::mutex> lock(mu);
        ++arrived;
        cv.notify_all();
    }
    void wait_arrived(unsigned n) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return arrived >= n; });
    }
    void open(Phase p) {
        std::lock_guard<std::mutex> lock(mu);
        phase = p;
        cv.notify_all();
    }
    void wait_phase(Phase p) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return static_cast<int>(phase) >= static_cast<int>(p); });
    }
};

struct Shared {
    Options opt;
    std::size_t slot_count = 0;
    std::unique_ptr<std::atomic<unsigned char*>[]> slots;
    Gate gate;
    std::atomic<bool> stop{false};
    std::atomic<bool> measuring{false};  // set once the warm-up is over: count from here
};

// Per-thread results, padded to a cache line so the counters of two threads never share one.
struct alignas(64) WorkerResult {
    std::uint64_t operations = 0;
    std::uint64_t checksum = 0;
    std::uint64_t fill_checksum = 0;  // the fill alone: a function of the seed, not of timing
};

unsigned char* new_buffer(std::size_t size) {
    auto* p = static_cast<unsigned char*>(std::malloc(size));
    if (p == nullptr) fail("malloc returned NULL (out of memory)");
    return p;
}

void worker(Shared& sh, unsigned index, WorkerResult& out) {
    const Options& opt = sh.opt;
    // A distinct stream per thread; splitmix64's output mixing decorrelates nearby states.
    Rng rng{opt.seed ^ (0xD1B54A32D192ED03ull * (index + 1))};
    const std::uint64_t span = opt.max_bytes - opt.min_bytes + 1;
    std::uint64_t h = 0xCBF29CE484222325ull;

    // Fill: each thread fills a contiguous share of the slots, so the fill is parallel and the
    // initial buffers come from every thread's heap, as they will during the churn.
    const std::size_t lo = sh.slot_count * index / opt.threads;
    const std::size_t hi = sh.slot_count * (index + 1) / opt.threads;
    for (std::size_t i = lo; i < hi; ++i) {
        std::size_t size = static_cast<std::size_t>(opt.min_bytes + rng.below(span));
        unsigned char* p = new_buffer(size);
        h = touch(p, size, static_cast<unsigned char>(rng.next()), h);
        sh.slots[i].store(p, std::memory_order_release);
    }
    out.fill_checksum = h;
    sh.gate.arrive();
    sh.gate.wait_phase(Phase::churn);

    // Churn: allocate, touch, swap into a random slot (of this thread's share, or of the whole
    // set with --share global), free the survivor it replaces.
    const std::size_t base = opt.global ? 0 : lo;
    const std::size_t choices = opt.global ? sh.slot_count : hi - lo;
    std::uint64_t ops = 0;
    std::uint64_t ops_at_start = 0;  // operations of the warm-up, left out of the count
    bool counting = false;
    while (!sh.stop.load(std::memory_order_relaxed)) {
        if (!counting && sh.measuring.load(std::memory_order_relaxed)) {
            counting = true;
            ops_at_start = ops;
        }
        std::size_t size = static_cast<std::size_t>(opt.min_bytes + rng.below(span));
        unsigned char* p = new_buffer(size);
        std::uint64_t r = rng.next();
        h = touch(p, size, static_cast<unsigned char>(r), h);
        std::size_t slot =
            base + static_cast<std::size_t>((static_cast<u128>(r) * choices) >> 64);
        unsigned char* old = sh.slots[slot].exchange(p, std::memory_order_acq_rel);
        h = fold(h, old[0]);  // read back what was written: the data really exists
        std::free(old);
        ++ops;
    }
    out.operations = counting ? ops - ops_at_start : 0;
    out.checksum = h;
    sh.gate.arrive();
    // Stay alive (blocked) through the idle rest, as the service's workers do: some allocators
    // flush or abandon a thread's heap when the thread exits, which would blur "settled".
    sh.gate.wait_phase(Phase::done);
}

// Minimal JSON string escaping (paths may hold quotes, backslashes or control characters).
std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

double g_start = 0.0;

void emit_phase(const char* phase) {
    double now = mono_now();
    std::printf("{\"event\":\"phase\",\"phase\":\"%s\",\"t_s\":%.6f,\"mono_s\":%.6f}\n", phase,
                now - g_start, now);
    std::fflush(stdout);
}

// The file that really serves malloc: ask the dynamic linker for the global "malloc" (the
// interposed one when a preload worked) and which loaded object contains it. A preload that
// ld.so ignored shows up here as libc, never silently.
std::string malloc_library() {
    void* sym = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info{};
    if (sym == nullptr || dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return "";
    char resolved[PATH_MAX];
    if (realpath(info.dli_fname, resolved) != nullptr) return resolved;
    return info.dli_fname;
}

// ---------------------------------------------------------------------------------------------
// The statistics log (--stats-log FILE): what the allocator itself says it holds, beside what
// the kernel says the process holds, over time. The kernel's Pss_Anon is the study's measure;
// the allocator's own figures say why it is that size: bytes the program holds live, bytes the
// allocator keeps free but resident, bytes it has returned. Which allocator serves malloc is
// found at run time (the program never links one), and each family is asked in its own terms.
//
// One line per record, written with a single write(2) on an O_APPEND descriptor so a line is
// never torn, even if several processes share the file:
//   {"t":..,"pid":..,"phase":"warmup|churn|idle|end","internal":{"family":..,"version":..,
//    "raw":{<native statistic>: bytes,..},"absent":{<native statistic>: "why",..}},
//    "kernel":{"Pss_Anon":..,"Rss_Anon":..,"LazyFree":..,"AnonHugePages":..}}
// t is CLOCK_MONOTONIC seconds (the phase events' mono_s clock) taken when the read began.
// phase is the phase the process is in: the first line of each is written when it begins
// ("warmup" only with --warmup-s > 0), and "end" once, when the idle rest is over and before
// anything is freed. Not every raw figure is bytes where the allocator's API says otherwise:
// mallinfo2's ordblks, smblks and hblks count chunks. mimalloc on Linux reports its commit as
// current_rss (an estimate, not a reading of the kernel's resident set).
// Cost, measured on 2 cores with 256 MiB live and 4 threads: reading smaps_rollup takes 6-9
// ms of CPU (it walks the page tables; under 1 ms when the heap sits in huge pages), so the
// beats inside the timed churn read RssAnon from /proc/self/status instead, and only phase
// changes and the idle's beats carry smaps_rollup's Pss_Anon, LazyFree and AnonHugePages; the
// allocator's read 0.1 ms or less, but glibc's mallinfo2 walks every free list (about 1 ms
// idle) and, like jemalloc's epoch refresh, waits for arena locks while the churn runs.
// The statistics thread formats into fixed buffers and never calls malloc itself, so its own
// bookkeeping does not show up in the numbers it reads.

// One native statistic in bytes, or one that could not be read and why. Names and reasons
// are string literals (static storage); a reason built at run time goes into `why`.
struct Stat {
    const char* name;
    std::uint64_t bytes;
};
struct Missing {
    const char* name;
    char why[160];
};

struct Snapshot {
    Stat raw[24];
    int raw_count = 0;
    Missing absent[12];
    int absent_count = 0;

    void add(const char* name, std::uint64_t bytes) {
        if (raw_count < static_cast<int>(sizeof raw / sizeof raw[0])) raw[raw_count++] = {name, bytes};
    }
    void miss(const char* name, const char* format, ...) __attribute__((format(printf, 3, 4))) {
        if (absent_count >= static_cast<int>(sizeof absent / sizeof absent[0])) return;
        Missing& m = absent[absent_count++];
        m.name = name;
        va_list args;
        va_start(args, format);
        std::vsnprintf(m.why, sizeof m.why, format, args);
        va_end(args);
    }
};

// The C entry points each family exports, with the signatures their headers declare.
struct GlibcMallinfo2 {  // struct mallinfo2 of glibc >= 2.33: ten size_t fields in this order
    std::size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks,
        keepcost;
};
using Mallinfo2Fn = GlibcMallinfo2 (*)();
using LibcVersionFn = const char* (*)();
using MallctlFn = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
using TcPropertyFn = int (*)(const char*, std::size_t*);
using TcVersionFn = const char* (*)(int*, int*, const char**);
using MiVersionFn = int (*)();
using MiProcessInfoFn = void (*)(std::size_t*, std::size_t*, std::size_t*, std::size_t*,
                                 std::size_t*, std::size_t*, std::size_t*, std::size_t*);
using MiStatsJsonFn = char* (*)(std::size_t, char*);

// jemalloc 5's MALLCTL_ARENAS_ALL: "stats.arenas.4096.*" sums every arena.
const char* const kJemallocBytes[] = {"stats.allocated", "stats.active", "stats.metadata",
                                      "stats.resident", "stats.mapped", "stats.retained"};
const char* const kJemallocPages[] = {"stats.arenas.4096.pdirty", "stats.arenas.4096.pmuzzy"};
const char* const kTcmallocBytes[] = {
    "generic.current_allocated_bytes",  "generic.heap_size",
    "tcmalloc.pageheap_free_bytes",     "tcmalloc.pageheap_unmapped_bytes",
    "tcmalloc.central_cache_free_bytes", "tcmalloc.transfer_cache_free_bytes",
    "tcmalloc.thread_cache_free_bytes"};

// Which allocator serves malloc and how to ask it; found once, before any thread starts.
struct AllocatorProbe {
    const char* family = "unknown";
    char version[64] = "unknown";
    char library[PATH_MAX] = "";
    Mallinfo2Fn mallinfo2 = nullptr;
    MallctlFn mallctl = nullptr;
    std::size_t jemalloc_page = 0;
    TcPropertyFn tc_property = nullptr;
    MiProcessInfoFn mi_process_info = nullptr;
    MiStatsJsonFn mi_stats_json = nullptr;
    int mi_version = 0;

    void read(Snapshot& out) const;
};

// The loaded object that holds an address (its base address; nullptr if none).
const void* object_of(const void* address) {
    Dl_info info{};
    if (address == nullptr || dladdr(address, &info) == 0) return nullptr;
    return info.dli_fbase;
}

// A family is the one serving malloc when its own entry point lives in the same object as
// the global malloc: libc always exports mallinfo2, a preloaded tcmalloc exports mallinfo,
// and a symbol found elsewhere would read an allocator that serves nothing.
AllocatorProbe probe_allocator() {
    AllocatorProbe p;
    void* malloc_sym = dlsym(RTLD_DEFAULT, "malloc");
    const void* home = object_of(malloc_sym);
    Dl_info info{};
    if (malloc_sym != nullptr && dladdr(malloc_sym, &info) != 0 && info.dli_fname != nullptr) {
        std::snprintf(p.library, sizeof p.library, "%s", info.dli_fname);
    }
    auto own = [home](const char* name) -> void* {
        void* sym = dlsym(RTLD_DEFAULT, name);
        return sym != nullptr && home != nullptr && object_of(sym) == home ? sym : nullptr;
    };
    if (void* f = own("mallctl")) {
        p.family = "jemalloc";
        p.mallctl = reinterpret_cast<MallctlFn>(f);
        const char* version = nullptr;
        std::size_t size = sizeof version;
        if (p.mallctl("version", &version, &size, nullptr, 0) == 0 && version != nullptr) {
            std::snprintf(p.version, sizeof p.version, "%s", version);
        }
        size = sizeof p.jemalloc_page;
        if (p.mallctl("arenas.page", &p.jemalloc_page, &size, nullptr, 0) != 0) p.jemalloc_page = 0;
    } else if (void* f = own("MallocExtension_GetNumericProperty")) {
        p.family = "tcmalloc";
        p.tc_property = reinterpret_cast<TcPropertyFn>(f);
        if (void* v = own("tc_version")) {
            int major = 0, minor = 0;
            const char* patch = nullptr;
            const char* text = reinterpret_cast<TcVersionFn>(v)(&major, &minor, &patch);
            if (text != nullptr) std::snprintf(p.version, sizeof p.version, "%s", text);
        }
    } else if (void* f = own("mi_process_info")) {
        p.family = "mimalloc";
        p.mi_process_info = reinterpret_cast<MiProcessInfoFn>(f);
        p.mi_stats_json = reinterpret_cast<MiStatsJsonFn>(own("mi_stats_get_json"));
        if (void* v = own("mi_version")) {
            // MI_MALLOC_VERSION: 209 for 2.0.9 (one digit each) up to v2, 30403 for 3.4.3.
            const int n = p.mi_version = reinterpret_cast<MiVersionFn>(v)();
            if (n >= 10000) {
                std::snprintf(p.version, sizeof p.version, "%d.%d.%d", n / 10000, n / 100 % 100, n % 100);
            } else {
                std::snprintf(p.version, sizeof p.version, "%d.%d.%d", n / 100, n / 10 % 10, n % 10);
            }
        }
    } else if (void* f = own("gnu_get_libc_version")) {
        p.family = "glibc";
        // "glibc 2.36", as service.mallocinfo.allocator_version reports it for the service.
        std::snprintf(p.version, sizeof p.version, "glibc %s", reinterpret_cast<LibcVersionFn>(f)());
        p.mallinfo2 = reinterpret_cast<Mallinfo2Fn>(own("mallinfo2"));
    }
    return p;
}

// `"key": {... "field": N ...}` or, with field == nullptr, `"key": N`, in mimalloc's own JSON
// statistics (mi_stats_get_json). Keys are matched with their quotes, so "committed" never
// matches "page_committed".
bool json_count(const char* json, const char* key, const char* field, std::uint64_t* out) {
    char needle[80];
    std::snprintf(needle, sizeof needle, "\"%s\":", key);
    const char* at = std::strstr(json, needle);
    if (at == nullptr) return false;
    at += std::strlen(needle);
    if (field != nullptr) {
        const char* close = std::strchr(at, '}');
        std::snprintf(needle, sizeof needle, "\"%s\":", field);
        at = std::strstr(at, needle);
        if (at == nullptr || close == nullptr || at > close) return false;
        at += std::strlen(needle);
    }
    while (*at == ' ') ++at;
    if (*at < '0' || *at > '9') return false;  // a negative count is no byte figure
    char* end = nullptr;
    *out = std::strtoull(at, &end, 10);
    return end != at;
}

void AllocatorProbe::read(Snapshot& out) const {
    if (std::strcmp(family, "glibc") == 0) {
        if (mallinfo2 == nullptr) {
            out.miss("mallinfo2", "%s has no mallinfo2 (added in glibc 2.33)", version);
            return;
        }
        // Every arena, locked in turn; ordblks, smblks and hblks are counts of chunks, not
        // bytes, and usmblks is always 0 (kept by glibc for compatibility).
        const GlibcMallinfo2 m = mallinfo2();
        out.add("mallinfo2.arena", m.arena);
        out.add("mallinfo2.ordblks", m.ordblks);
        out.add("mallinfo2.smblks", m.smblks);
        out.add("mallinfo2.hblks", m.hblks);
        out.add("mallinfo2.hblkhd", m.hblkhd);
        out.add("mallinfo2.usmblks", m.usmblks);
        out.add("mallinfo2.fsmblks", m.fsmblks);
        out.add("mallinfo2.uordblks", m.uordblks);
        out.add("mallinfo2.fordblks", m.fordblks);
        out.add("mallinfo2.keepcost", m.keepcost);
    } else if (std::strcmp(family, "jemalloc") == 0) {
        // The stats.* values are a snapshot that only a write to "epoch" refreshes.
        std::uint64_t epoch = 1;
        std::size_t size = sizeof epoch;
        const int rc = mallctl("epoch", &epoch, &size, &epoch, sizeof epoch);
        for (const char* name : kJemallocBytes) {
            std::size_t value = 0;
            size = sizeof value;
            const int err = rc != 0 ? rc : mallctl(name, &value, &size, nullptr, 0);
            if (err == 0) {
                out.add(name, value);
            } else {
                out.miss(name, "mallctl failed: %s%s", std::strerror(err),
                         rc != 0 ? " (refreshing epoch)" : "");
            }
        }
        for (const char* name : kJemallocPages) {
            std::size_t pages = 0;
            size = sizeof pages;
            const int err = rc != 0 ? rc : mallctl(name, &pages, &size, nullptr, 0);
            if (err != 0) {
                out.miss(name, "mallctl failed: %s%s", std::strerror(err),
                         rc != 0 ? " (refreshing epoch)" : "");
            } else if (jemalloc_page == 0) {
                out.miss(name, "arenas.page unreadable: pages cannot be turned into bytes");
            } else {
                out.add(name, static_cast<std::uint64_t>(pages) * jemalloc_page);
            }
        }
    } else if (std::strcmp(family, "tcmalloc") == 0) {
        for (const char* name : kTcmallocBytes) {
            std::size_t value = 0;
            if (tc_property(name, &value) != 0) {
                out.add(name, value);
            } else {
                out.miss(name, "MallocExtension_GetNumericProperty does not know it in %s", version);
            }
        }
    } else if (std::strcmp(family, "mimalloc") == 0) {
        std::size_t elapsed = 0, user = 0, sys = 0, rss = 0, peak_rss = 0, commit = 0,
                    peak_commit = 0, faults = 0;
        mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
        out.add("mi_process_info.current_commit", commit);
        out.add("mi_process_info.peak_commit", peak_commit);
        out.add("mi_process_info.current_rss", rss);
        out.add("mi_process_info.peak_rss", peak_rss);
        if (mi_stats_json == nullptr) {
            out.miss("mi_stats_get_json.malloc_normal.current",
                     "mimalloc %s exports no statistics getter (mi_stats_get_json came with v3); "
                     "its printed statistics count no allocations in a release build", version);
            out.miss("mi_stats_get_json.reserved.current",
                     "mimalloc %s prints it (mi_stats_print_out) only as text rounded to 0.1 MiB",
                     version);
            return;
        }
        // About 15 KB of JSON for v3.4; a static buffer, since only this thread reads it.
        static char json[1 << 16];
        if (mi_stats_json(sizeof json, json) == nullptr) {
            out.miss("mi_stats_get_json", "mi_stats_get_json returned NULL");
            return;
        }
        json[sizeof json - 1] = '\0';
        struct Field {
            const char* name;
            const char* key;
            const char* field;
        };
        static const Field kFields[] = {
            {"mi_stats_get_json.committed.current", "committed", "current"},
            {"mi_stats_get_json.committed.peak", "committed", "peak"},
            {"mi_stats_get_json.reserved.current", "reserved", "current"},
            {"mi_stats_get_json.purged", "purged", nullptr},
        };
        for (const Field& f : kFields) {
            std::uint64_t value = 0;
            if (json_count(json, f.key, f.field, &value)) {
                out.add(f.name, value);
            } else {
                out.miss(f.name, "not found in mi_stats_get_json of mimalloc %s", version);
            }
        }
        // Bytes in use are counted only when mimalloc was built with MI_STAT > 0: a release
        // build leaves malloc_normal at 0 however much the program allocated.
        std::uint64_t count = 0, normal = 0, huge = 0;
        const bool counted = json_count(json, "malloc_normal_count", nullptr, &count) && count > 0;
        if (counted && json_count(json, "malloc_normal", "current", &normal) &&
            json_count(json, "malloc_huge", "current", &huge)) {
            out.add("mi_stats_get_json.malloc_normal.current", normal);
            out.add("mi_stats_get_json.malloc_huge.current", huge);
        } else {
            const char* why = "this build counts no allocations (malloc_normal_count is 0 after the "
                              "fill: statistics compiled out, MI_STAT=0)";
            out.miss("mi_stats_get_json.malloc_normal.current", "%s", why);
            out.miss("mi_stats_get_json.malloc_huge.current", "%s", why);
        }
    } else {
        out.miss("malloc", "%s exports none of mallctl, MallocExtension_GetNumericProperty, "
                 "mi_process_info, gnu_get_libc_version", library[0] ? library : "malloc's object");
    }
}

// One JSON line in a fixed buffer; overflow is reported, never silently truncated.
class Line {
public:
    void add(const char* format, ...) __attribute__((format(printf, 2, 3))) {
        if (overflow_) return;
        va_list args;
        va_start(args, format);
        const int n = std::vsnprintf(buf_ + len_, sizeof buf_ - len_, format, args);
        va_end(args);
        if (n < 0 || static_cast<std::size_t>(n) >= sizeof buf_ - len_) {
            overflow_ = true;
        } else {
            len_ += static_cast<std::size_t>(n);
        }
    }
    void string(const char* s) {
        add("\"");
        for (const unsigned char* c = reinterpret_cast<const unsigned char*>(s); *c != 0; ++c) {
            if (*c == '"' || *c == '\\') {
                add("\\%c", *c);
            } else if (*c < 0x20) {
                add("\\u%04x", *c);
            } else {
                add("%c", *c);
            }
        }
        add("\"");
    }
    void reset() {
        len_ = 0;
        overflow_ = false;
    }
    const char* data() const { return buf_; }
    std::size_t size() const { return len_; }
    bool overflow() const { return overflow_; }

private:
    char buf_[16384];
    std::size_t len_ = 0;
    bool overflow_ = false;
};

// Anonymous memory as the kernel counts it, kB -> bytes: with `rollup` from
// /proc/self/smaps_rollup (a page-table walk), else RssAnon alone from /proc/self/status (kept
// counters). A field the kernel does not report is left out of the line.
void add_kernel_fields(Line& line, bool rollup) {
    static const char* const kRollup[][2] = {{"Pss_Anon:", "Pss_Anon"},
                                             {"Anonymous:", "Rss_Anon"},
                                             {"LazyFree:", "LazyFree"},
                                             {"AnonHugePages:", "AnonHugePages"}};
    static const char* const kStatus[][2] = {{"RssAnon:", "Rss_Anon"}};
    char text[8192];
    std::size_t len = 0;
    const int fd = open(rollup ? "/proc/self/smaps_rollup" : "/proc/self/status",
                        O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n;
        while (len < sizeof text - 1 && (n = read(fd, text + len, sizeof text - 1 - len)) != 0) {
            if (n < 0) {
                if (errno == EINTR) continue;
                break;
            }
            len += static_cast<std::size_t>(n);
        }
        close(fd);
    }
    text[len] = '\0';
    line.add("{");
    bool first = true;
    const std::size_t count = rollup ? 4 : 1;
    for (std::size_t i = 0; i < count; ++i) {
        const char* const* field = rollup ? kRollup[i] : kStatus[i];
        const std::size_t key_len = std::strlen(field[0]);
        for (const char* at = text; at != nullptr && *at != '\0';) {
            if (std::strncmp(at, field[0], key_len) == 0) {
                char* end = nullptr;
                const unsigned long long kb = std::strtoull(at + key_len, &end, 10);
                if (end != at + key_len) {
                    line.add("%s\"%s\": %llu", first ? "" : ", ", field[1], kb * 1024ull);
                    first = false;
                }
                break;
            }
            at = std::strchr(at, '\n');
            if (at != nullptr) ++at;
        }
    }
    line.add("}");
}

// The statistics thread: a record every `every_s` seconds and one at each phase change (the
// main thread queues the new phase, the thread writes its record at once and starts its
// interval again). It lives from the churn's start to the end of the idle rest.
class StatsLog {
public:
    StatsLog(int fd, double every_s, const AllocatorProbe& probe)
        : fd_(fd), every_s_(every_s), probe_(probe) {}

    void start(const char* first_phase) {
        phase(first_phase);
        thread_ = std::thread([this] { run(); });
    }
    void phase(const char* name) {
        std::lock_guard<std::mutex> lock(mu_);
        if (tail_ < kMaxPending) pending_[tail_++] = name;
        cv_.notify_all();
    }
    // Queue "end", wait until its record is written, stop the thread.
    void finish() {
        phase("end");
        thread_.join();
        close(fd_);
    }

private:
    static constexpr int kMaxPending = 8;

    void run() {
        std::unique_lock<std::mutex> lock(mu_);
        const char* current = nullptr;
        double next = 0;
        for (;;) {
            if (head_ < tail_) {
                current = pending_[head_++];
                lock.unlock();
                record(current, true);
                lock.lock();
                if (std::strcmp(current, "end") == 0) return;
                next = mono_now() + every_s_;
                continue;
            }
            const double wait = next - mono_now();
            if (wait <= 0) {
                lock.unlock();
                // While the churn is timed, the page-table walk of smaps_rollup (milliseconds,
                // holding the memory map's lock the allocator's mmap and munmap wait on) is
                // left to the phase changes; the beats in between read RssAnon alone.
                const bool timed = std::strcmp(current, "churn") == 0 ||
                                   std::strcmp(current, "warmup") == 0;
                record(current, !timed);
                lock.lock();
                next += every_s_;
                // A slow read (or a stopped process) skips the missed beats, no burst after.
                if (next <= mono_now()) next = mono_now() + every_s_;
                continue;
            }
            cv_.wait_for(lock, std::chrono::duration<double>(wait));
        }
    }

    void record(const char* phase, bool rollup) {
        const double t = mono_now();
        snapshot_ = Snapshot{};
        probe_.read(snapshot_);
        Line& line = line_;
        line.reset();
        line.add("{\"t\": %.4f, \"pid\": %ld, \"phase\": \"%s\", \"internal\": {\"family\": \"%s\", "
                 "\"version\": ",
                 t, static_cast<long>(getpid()), phase, probe_.family);
        line.string(probe_.version);
        line.add(", \"raw\": {");
        for (int i = 0; i < snapshot_.raw_count; ++i) {
            line.add("%s\"%s\": %" PRIu64, i ? ", " : "", snapshot_.raw[i].name, snapshot_.raw[i].bytes);
        }
        line.add("}, \"absent\": {");
        for (int i = 0; i < snapshot_.absent_count; ++i) {
            line.add("%s\"%s\": ", i ? ", " : "", snapshot_.absent[i].name);
            line.string(snapshot_.absent[i].why);
        }
        line.add("}}, \"kernel\": ");
        add_kernel_fields(line, rollup);
        line.add("}\n");
        if (line.overflow()) fail("--stats-log: a record does not fit its buffer");
        ssize_t n;
        do {
            n = write(fd_, line.data(), line.size());
        } while (n < 0 && errno == EINTR);
        if (n != static_cast<ssize_t>(line.size())) {
            std::fprintf(stderr, "churn: writing --stats-log failed: %s\n",
                         n < 0 ? std::strerror(errno) : "short write");
            fail("the statistics log is incomplete");
        }
    }

    const int fd_;
    const double every_s_;
    const AllocatorProbe& probe_;
    std::mutex mu_;
    std::condition_variable cv_;
    const char* pending_[kMaxPending] = {};
    int head_ = 0;
    int tail_ = 0;
    std::thread thread_;
    Snapshot snapshot_;  // members, not locals: the thread's stack stays small
    Line line_;
};

struct Usage {
    double user_s = 0, sys_s = 0;
    long minor_faults = 0, major_faults = 0;
};

// CPU time and page faults of the whole process so far (every thread, live or joined).
Usage usage_now() {
    rusage ru{};
    if (getrusage(RUSAGE_SELF, &ru) != 0) fail("getrusage(RUSAGE_SELF) failed");
    Usage u;
    u.user_s = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) * 1e-6;
    u.sys_s = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) * 1e-6;
    u.minor_faults = ru.ru_minflt;
    u.major_faults = ru.ru_majflt;
    return u;
}

Usage operator-(const Usage& a, const Usage& b) {
    Usage d;
    d.user_s = a.user_s - b.user_s;
    d.sys_s = a.sys_s - b.sys_s;
    d.minor_faults = a.minor_faults - b.minor_faults;
    d.major_faults = a.major_faults - b.major_faults;
    return d;
}

// How many CPUs this process may run on (its affinity mask, which taskset or a cgroup cpuset
// narrows), not how many the machine has. The mask is grown until the kernel accepts its size,
// so machines with more than CPU_SETSIZE (1024) CPUs are counted too.
unsigned usable_cpus() {
    for (int n = CPU_SETSIZE; n <= (1 << 20); n *= 2) {
        cpu_set_t* set = CPU_ALLOC(n);
        if (set == nullptr) fail("cannot allocate a CPU set (out of memory)");
        const std::size_t size = CPU_ALLOC_SIZE(n);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(0, size, set) == 0) {
            const int count = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return count > 0 ? static_cast<unsigned>(count) : 1u;
        }
        const int err = errno;
        CPU_FREE(set);
        if (err != EINVAL) break;
    }
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? static_cast<unsigned>(online) : 1u;
}

}  // namespace

int main(int argc, char** argv) {
    g_start = mono_now();
    Shared sh;
    sh.opt = parse_args(argc, argv);
    const Options& opt = sh.opt;
    const unsigned cpus = usable_cpus();

    // Slots = live bytes / mean size: the set holds the target on average, whatever the mix.
    const double mean = (static_cast<double>(opt.min_bytes) + static_cast<double>(opt.max_bytes)) / 2;
    double count = std::floor(static_cast<double>(opt.live_bytes) / mean + 0.5);
    // Sharded, every thread needs at least one slot of its own to replace.
    const double at_least = opt.global ? 1.0 : static_cast<double>(opt.threads);
    if (count < at_least) count = at_least;
    if (count > 1e12) usage_error("--live-bytes is too large");
    sh.slot_count = static_cast<std::size_t>(count);
    sh.slots.reset(new (std::nothrow) std::atomic<unsigned char*>[sh.slot_count]);
    if (!sh.slots) fail("cannot allocate the slot array (out of memory)");

    // The statistics log is opened (and the allocator probed) before anything runs, so a bad
    // path fails at once and not after the fill.
    std::unique_ptr<AllocatorProbe> probe;
    std::unique_ptr<StatsLog> stats;
    if (!opt.stats_log.empty()) {
        const int fd = open(opt.stats_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            std::fprintf(stderr, "churn: cannot open --stats-log %s: %s\n", opt.stats_log.c_str(),
                         std::strerror(errno));
            return kExitFailure;
        }
        probe.reset(new AllocatorProbe(probe_allocator()));
        stats.reset(new StatsLog(fd, opt.stats_every_s, *probe));
    }

    emit_phase("fill");
    std::vector<WorkerResult> results(opt.threads);
    std::vector<std::thread> threads;
    threads.reserve(opt.threads);
    for (unsigned t = 0; t < opt.threads; ++t) {
        threads.emplace_back(worker, std::ref(sh), t, std::ref(results[t]));
    }
    sh.gate.wait_arrived(opt.threads);

    emit_phase("churn");
    if (stats) stats->start(opt.warmup_s > 0 ? "warmup" : "churn");
    sh.gate.open(Phase::churn);
    if (opt.warmup_s > 0) sleep_until(mono_now() + opt.warmup_s);
    const Usage u0 = usage_now();
    const double t0 = mono_now();
    sh.measuring.store(true, std::memory_order_relaxed);
    if (stats && opt.warmup_s > 0) stats->phase("churn");
    sleep_until(t0 + opt.seconds);
    sh.stop.store(true, std::memory_order_relaxed);
    sh.gate.wait_arrived(2 * opt.threads);
    const double churn_s = mono_now() - t0;
    const Usage churn_usage = usage_now() - u0;

    emit_phase("idle");
    if (stats) stats->phase("idle");
    sleep_until(mono_now() + opt.idle_s);
    // The last record is taken here, with the live set still held, before anything is freed.
    if (stats) stats->finish();

    emit_phase("done");
    sh.gate.open(Phase::done);
    for (auto& th : threads) th.join();
    std::uint64_t checksum = 0;
    std::uint64_t fill_checksum = 0;
    std::uint64_t operations = 0;
    for (unsigned t = 0; t < opt.threads; ++t) {
        checksum = fold(checksum, results[t].checksum);
        fill_checksum = fold(fill_checksum, results[t].fill_checksum);
        operations += results[t].operations;
    }
    for (std::size_t i = 0; i < sh.slot_count; ++i) {
        unsigned char* p = sh.slots[i].load(std::memory_order_acquire);
        checksum = fold(checksum, p[0]);
        std::free(p);
    }

    const Usage run_usage = usage_now();

    std::printf(
        "{\"event\":\"result\",\"threads\":%u,\"cpus\":%u,\"operations\":%" PRIu64
        ",\"seconds\":%.6f,\"allocs_per_s\":%.3f,\"live_bytes\":%" PRIu64 ",\"slots\":%zu"
        ",\"min_bytes\":%" PRIu64 ",\"max_bytes\":%" PRIu64 ",\"seed\":%" PRIu64 ",\"share\":\"%s\""
        ",\"idle_s\":%.17g,\"warmup_s\":%.17g"
        ",\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f,\"minor_faults\":%ld,\"major_faults\":%ld"
        ",\"run_cpu_user_s\":%.6f,\"run_cpu_sys_s\":%.6f,\"run_minor_faults\":%ld"
        ",\"run_major_faults\":%ld"
        ",\"checksum\":\"%016" PRIx64 "\",\"fill_checksum\":\"%016" PRIx64 "\""
        ",\"malloc_library\":%s,\"pid\":%ld}\n",
        opt.threads, cpus, operations, churn_s, static_cast<double>(operations) / churn_s,
        opt.live_bytes, sh.slot_count, opt.min_bytes, opt.max_bytes, opt.seed,
        opt.global ? "global" : "shard", opt.idle_s, opt.warmup_s,
        churn_usage.user_s, churn_usage.sys_s, churn_usage.minor_faults, churn_usage.major_faults,
        run_usage.user_s, run_usage.sys_s, run_usage.minor_faults, run_usage.major_faults,
        checksum, fill_checksum, json_string(malloc_library()).c_str(),
        static_cast<long>(getpid()));
    std::fflush(stdout);
    return 0;
}
