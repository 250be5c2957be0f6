/*
 * A small fixed pool of worker threads for eql_parallel_for. Workers sleep on a condition
 * variable between jobs rather than spinning, so that between two kernels the cores are free for
 * OpenBLAS's own threads (a spinning pool and a spinning BLAS fight over the same two cores).
 * The calling thread always runs the first range itself.
 */
#include "eql_cpu.h"

#include <pthread.h>

#define MAX_THREADS 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
/* Serialises callers: the pool runs one job at a time. */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;

static int threads = 1;   /* wanted, including the caller */
static int started = 0;   /* workers created so far */
static uint64_t generation = 0;
static int pending = 0;   /* ranges of the current job not yet finished by workers */

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

static void *worker(void *arg) {
  int index = (int)(intptr_t)arg; /* 1-based: range 0 belongs to the caller */
  uint64_t seen = 0;
  pthread_mutex_lock(&lock);
  for (;;) {
    while (generation == seen) pthread_cond_wait(&wake, &lock);
    seen = generation;
    int parts = job.parts;
    pthread_mutex_unlock(&lock);
    if (index < parts) run_part(index);
    pthread_mutex_lock(&lock);
    if (index < parts && --pending == 0) pthread_cond_signal(&done);
  }
  return 0;
}

/* Sets the number of threads kernels use (1 = the caller only); returns the number in effect. */
int32_t eql_cpu_set_threads(int32_t n) {
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  pthread_mutex_lock(&job_lock);
  pthread_mutex_lock(&lock);
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
  pthread_mutex_unlock(&lock);
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
  pthread_mutex_lock(&lock);
  job.fn = fn;
  job.ctx = ctx;
  job.n = n;
  job.parts = parts;
  pending = parts - 1;
  generation++;
  pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&lock);
  run_part(0);
  pthread_mutex_lock(&lock);
  while (pending > 0) pthread_cond_wait(&done, &lock);
  pthread_mutex_unlock(&lock);
  pthread_mutex_unlock(&job_lock);
}
