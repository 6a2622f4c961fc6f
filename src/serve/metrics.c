/*
 * metrics.c — what GET /metrics says, in Prometheus' text format 0.0.4.
 *
 * Counters are atomics any thread may bump. Generation speed is a gauge over
 * the last WINDOW seconds: the engine records each step's generated tokens
 * in a ring of 64 (time, tokens) entries and the rate is tokens after the
 * oldest entry still in the window divided by the time since it.
 */
#include <stdlib.h>
#include <string.h>
#include "serve/sv.h"

#define RING 64
#define WINDOW 10.0

void sv_metrics_init(sv_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->started = sv_now();
    for (int i = 0; i < RING; i++) m->ring_t[i] = -1e9;
}

void sv_metrics_free(sv_metrics *m) { pthread_mutex_destroy(&m->mu); }

void sv_metrics_step(sv_metrics *m, double now, int batch, int tokens) {
    atomic_fetch_add(&m->gen_tokens, tokens);
    atomic_fetch_add(&m->steps, 1);
    atomic_fetch_add(&m->step_tokens, batch);
    pthread_mutex_lock(&m->mu);
    m->ring_i = (m->ring_i + 1) % RING;
    m->ring_t[m->ring_i] = now;
    m->ring_n[m->ring_i] = tokens;
    pthread_mutex_unlock(&m->mu);
}

void sv_metrics_ttft(sv_metrics *m, double secs) {
    pthread_mutex_lock(&m->mu);
    m->ttft_sum += secs;
    m->ttft_count++;
    pthread_mutex_unlock(&m->mu);
}

/* rate: generated tokens/s over the window ending now */
static double rate(sv_metrics *m, double now) {
    double oldest = now;
    long toks = 0;
    for (int i = 0; i < RING; i++) {
        if (now - m->ring_t[i] > WINDOW) continue;
        toks += m->ring_n[i];
        if (m->ring_t[i] < oldest) oldest = m->ring_t[i];
    }
    double span = now - oldest;
    return span > 0.05 ? toks / span : 0.0;
}

static void metric(buf *b, const char *name, const char *type, const char *help, double v) {
    buf_fmt(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

char *sv_metrics_text(sv_metrics *m, double now) {
    buf b = {0};
    buf_fmt(&b, "# HELP deepc_http_responses_total HTTP responses by status class.\n"
                "# TYPE deepc_http_responses_total counter\n");
    for (int c = 2; c <= 5; c++) buf_fmt(&b, "deepc_http_responses_total{status=\"%dxx\"} %ld\n", c, atomic_load(&m->http[c]));
    metric(&b, "deepc_requests_total", "counter", "Completion requests accepted for generation.", atomic_load(&m->requests));
    metric(&b, "deepc_requests_cancelled_total", "counter", "Requests whose client went away before the end.",
           atomic_load(&m->cancelled));
    metric(&b, "deepc_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.", atomic_load(&m->prompt_tokens));
    metric(&b, "deepc_prompt_tokens_cached_total", "counter", "Prompt tokens taken from the prefix cache (not prefilled).",
           atomic_load(&m->cached_tokens));
    metric(&b, "deepc_generated_tokens_total", "counter", "Tokens generated.", atomic_load(&m->gen_tokens));
    metric(&b, "deepc_engine_steps_total", "counter", "Engine steps (one forward pass over a batch each).",
           atomic_load(&m->steps));
    metric(&b, "deepc_engine_batch_tokens_total", "counter", "Tokens those steps ran (prompt chunks and decode tokens).",
           atomic_load(&m->step_tokens));
    pthread_mutex_lock(&m->mu);
    double r = rate(m, now), ttft = m->ttft_count ? m->ttft_sum / m->ttft_count : 0;
    long nt = m->ttft_count;
    pthread_mutex_unlock(&m->mu);
    metric(&b, "deepc_tokens_per_second", "gauge", "Generated tokens per second over the last 10 s.", r);
    metric(&b, "deepc_time_to_first_token_seconds_avg", "gauge", "Mean time from arrival to the first token.", ttft);
    metric(&b, "deepc_time_to_first_token_count", "counter", "Requests counted in the mean time to first token.", nt);
    metric(&b, "deepc_queue_depth", "gauge", "Requests waiting for a free sequence.", atomic_load(&m->queued));
    metric(&b, "deepc_requests_running", "gauge", "Requests being generated.", atomic_load(&m->running));
    int used = atomic_load(&m->kv_pages_used), tot = atomic_load(&m->kv_pages);
    metric(&b, "deepc_kv_cache_pages_used", "gauge", "Pages of the KV store in use.", used);
    metric(&b, "deepc_kv_cache_pages_total", "gauge", "Pages in the KV store.", tot);
    metric(&b, "deepc_kv_cache_usage_ratio", "gauge", "Fraction of the KV store in use.", tot ? (double)used / tot : 0);
    metric(&b, "deepc_prefix_cache_sequences", "gauge", "Finished sequences kept for the prefix cache.",
           atomic_load(&m->seqs_cached));
    metric(&b, "deepc_uptime_seconds", "gauge", "Seconds since the server started.", now - m->started);
    if (b.oom) {
        buf_free(&b);
        return NULL;
    }
    return b.s;
}
