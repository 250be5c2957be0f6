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
 */
#include "eql_cpu.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_THREADS 64
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
static _Atomic uint64_t generation = 0;
static _Atomic int pending = 0; /* ranges of the current job not yet finished by workers */

/* Written by the caller before it publishes a new generation (release), read after (acquire). */
static struct {
  eql_task fn;
  void *ctx;
  int64_t n;
  int parts;
} job;

static void run_part(int part) {
  int64_t begin = job.n * part / job.parts, end = job.n * (part + 1) / job.parts;
  if (begin < end) job.fn(job.ctx, begin, end);
}

/* Waits until the generation differs from `seen`: spinning first, then sleeping. */
static uint64_t next_generation(uint64_t seen) {
  for (int spins = 0; spins < SPIN_LIMIT; spins++) {
    uint64_t gen = atomic_load_explicit(&generation, memory_order_acquire);
    if (gen != seen) return gen;
    cpu_relax();
  }
  pthread_mutex_lock(&lock);
  sleepers++;
  uint64_t gen;
  while ((gen = atomic_load_explicit(&generation, memory_order_acquire)) == seen) {
    pthread_cond_wait(&wake, &lock);
  }
  sleepers--;
  pthread_mutex_unlock(&lock);
  return gen;
}

static void *worker(void *arg) {
  int index = (int)(intptr_t)arg; /* 1-based: range 0 belongs to the caller */
  uint64_t seen = 0;
  for (;;) {
    seen = next_generation(seen);
    if (index >= job.parts) continue;
    run_part(index);
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
  job.fn = fn;
  job.ctx = ctx;
  job.n = n;
  job.parts = parts;
  atomic_store_explicit(&pending, parts - 1, memory_order_relaxed);
  pthread_mutex_lock(&lock);
  atomic_fetch_add_explicit(&generation, 1, memory_order_release);
  if (sleepers > 0) pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&lock);
  run_part(0);
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
