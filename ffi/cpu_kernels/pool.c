/*
 * A small fixed pool of worker threads for eql_parallel_for. The calling thread always runs the
 * first range itself.
 *
 * Waking a sleeping thread costs tens of microseconds on a virtual machine, as much as a whole
 * small kernel, and a training step runs hundreds of kernels back to back. So a worker spins for
 * a short while (about a hundred microseconds) after each job, watching for the next one, and
 * only then sleeps on a condition variable; the caller likewise spins briefly before sleeping
 * while the workers finish. Between steps the threads sleep, leaving the cores to OpenBLAS's own
 * threads and to other processes.
 *
 * Correctness must not depend on timing: a worker may be descheduled at any point, for longer
 * than a whole job, when there are more threads than free cores. So the job's fields and its
 * generation number are written and read together under `lock`: a worker that saw the
 * generation change takes the lock, reads the generation again with the job it belongs to, and
 * acts on that pair only. It runs its range of a generation at most once, and a worker that has
 * no range in a job never touches the job's pending count. The caller cannot publish the next
 * job until every worker with a range in this one has finished it, so no worker can miss a job
 * it is part of.
 */
#include "eql_cpu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MAX_THREADS 256
/* Polls of a flag before a thread goes to sleep. */
#define SPIN_LIMIT 4000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
/* Serialises callers: the pool runs one job at a time. */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;

static int threads = 1; /* wanted, including the caller */
static int started = 0; /* workers created so far */
static int sleepers = 0; /* workers waiting on `wake` (under `lock`) */
/* Changed only under `lock`; read without it by spinning threads as a hint that work is there. */
static _Atomic uint64_t generation = 0;
static _Atomic int pending = 0; /* ranges of the current job not yet finished by workers */

/* The current job; written by the caller and read by workers only under `lock`. */
struct job {
  eql_task fn;
  void *ctx;
  int64_t n;
  int parts;
};
static struct job job;

static void run_part(const struct job *j, int part) {
  int64_t begin = j->n * part / j->parts, end = j->n * (part + 1) / j->parts;
  if (begin < end) j->fn(j->ctx, begin, end);
}

/*
 * Waits until the generation differs from `seen` (spinning first, then sleeping), then returns
 * the generation in effect together with a copy of its job, both read under `lock`.
 */
static uint64_t next_job(uint64_t seen, struct job *out) {
  int spins = 0;
  while (spins < SPIN_LIMIT && atomic_load_explicit(&generation, memory_order_acquire) == seen) {
    cpu_relax();
    spins++;
  }
  pthread_mutex_lock(&lock);
  uint64_t gen;
  while ((gen = atomic_load_explicit(&generation, memory_order_relaxed)) == seen) {
    sleepers++;
    pthread_cond_wait(&wake, &lock);
    sleepers--;
  }
  *out = job;
  pthread_mutex_unlock(&lock);
  return gen;
}

static void *worker(void *arg) {
  int index = (int)(intptr_t)arg; /* 1-based: range 0 belongs to the caller */
  uint64_t seen = 0;
  struct job mine;
  for (;;) {
    seen = next_job(seen, &mine);
    if (index >= mine.parts) continue;
    run_part(&mine, index);
    if (atomic_fetch_sub_explicit(&pending, 1, memory_order_acq_rel) == 1) {
      pthread_mutex_lock(&lock);
      pthread_cond_signal(&done);
      pthread_mutex_unlock(&lock);
    }
  }
  return 0;
}

/* Sets the number of threads kernels use (1 = the caller only); returns the number in effect. */
int32_t eql_cpu_set_threads(int32_t n) {
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  pthread_mutex_lock(&job_lock);
  while (started < n - 1) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, worker, (void *)(intptr_t)(started + 1));
    pthread_attr_destroy(&attr);
    if (rc != 0) break;
    started++;
  }
  threads = n <= started + 1 ? n : started + 1;
  int result = threads;
  pthread_mutex_unlock(&job_lock);
  return result;
}

/* The library's interface version (EQL_CPU_ABI). */
int32_t eql_cpu_abi(void) { return EQL_CPU_ABI; }

/* The build variant (EQL_VARIANT_*). */
int32_t eql_cpu_variant(void) { return EQL_VARIANT; }

void eql_parallel_for(int64_t n, int64_t grain, eql_task fn, void *ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t most = (n + grain - 1) / grain;
  pthread_mutex_lock(&job_lock);
  int parts = threads < most ? threads : (int)most;
  if (parts <= 1) {
    pthread_mutex_unlock(&job_lock);
    fn(ctx, 0, n);
    return;
  }
  struct job mine = {fn, ctx, n, parts};
  atomic_store_explicit(&pending, parts - 1, memory_order_relaxed);
  pthread_mutex_lock(&lock);
  job = mine;
  atomic_fetch_add_explicit(&generation, 1, memory_order_release);
  if (sleepers > 0) pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&lock);
  run_part(&mine, 0);
  for (int spins = 0; spins < SPIN_LIMIT; spins++) {
    if (atomic_load_explicit(&pending, memory_order_acquire) == 0) break;
    cpu_relax();
  }
  if (atomic_load_explicit(&pending, memory_order_acquire) != 0) {
    pthread_mutex_lock(&lock);
    while (atomic_load_explicit(&pending, memory_order_acquire) != 0) pthread_cond_wait(&done, &lock);
    pthread_mutex_unlock(&lock);
  }
  pthread_mutex_unlock(&job_lock);
}

/* Diagnostics for the tests: every job adds one to the counter of each index it covers. */
typedef struct {
  int32_t *count;
} count_args;

static void count_range(void *p, int64_t begin, int64_t end) {
  int32_t *count = ((count_args *)p)->count;
  for (int64_t i = begin; i < end; i++) count[i]++;
}

/*
 * Runs `jobs` parallel loops with the given grain, each adding one to a counter per index it
 * covers, and checks after each loop that every index was covered exactly once. The loops' lengths
 * cycle through 1 .. n, so that their part counts change from one job to the next and some workers
 * sit out some jobs. Returns the number of (job, index) pairs found wrong (0 for a correct pool),
 * or -1 when out of memory.
 */
int64_t eql_pool_check(int64_t jobs, int64_t n, int64_t grain) {
  if (jobs < 0 || n < 1) return 0;
  int32_t *count = calloc((size_t)n, sizeof(int32_t));
  int32_t *expected = calloc((size_t)n, sizeof(int32_t));
  if (!count || !expected) {
    free(count);
    free(expected);
    return -1;
  }
  count_args a = {count};
  int64_t wrong = 0;
  for (int64_t j = 0; j < jobs; j++) {
    const int64_t len = 1 + (j * 7) % n;
    eql_parallel_for(len, grain, count_range, &a);
    for (int64_t i = 0; i < len; i++) expected[i]++;
    for (int64_t i = 0; i < n; i++) {
      if (count[i] != expected[i]) {
        wrong++;
        count[i] = expected[i];
      }
    }
  }
  free(count);
  free(expected);
  return wrong;
}
