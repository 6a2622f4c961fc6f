/*
 * engine.h — the engine's insides, shared by engine.c, session.c (the
 * one-sequence dc_session on top of it) and session_file.c.
 */
#ifndef DC_ENGINE_H
#define DC_ENGINE_H
#include "deepc.h"
#include "infer/kv_store.h"
#include "model/model.h"

struct dc_engine {
    dc_model *m;              /* borrowed */
    dc_engine_opts o;
    kv_store kv;
    kv_view view;             /* the store, layer 0 (model.h) */
    scratch s;
    /* one call's batch, regrouped by sequence (max_batch each) */
    int *perm;                /* perm[k]: the caller's index of forward row k */
    int *inv;                 /* inv[i]: the forward row of caller index i */
    int *hinv;                /* inv of the last main-model call (dc_engine_hidden) */
    int *ids, *pos, *run0, *cnt, *first;
    const int **tp;
    float *hbuf;              /* (max_batch, C) MTP inputs in forward order, grown on demand */
    size_t hbuf_cap;
    float *logits;            /* (rows, V) grown on demand */
    size_t logits_cap;
    int *lrow;                /* (max_batch) logits row of each caller index, -1: none */
    int last_n, hidden_n, nrun;
    size_t base_bytes, expert_bytes; /* weights read per step but the routed experts; one expert */
    size_t last_bytes;          /* weights the last main-model call read */
};

/* engine_reserve: scratch for forward calls of n tokens now. */
int engine_reserve(dc_engine *e, int n, dc_err *err);
/* engine_seq_set: make sequence seq hold len main and mtp_len MTP positions
 * (pages allocated, contents left to the caller: session files). */
int engine_seq_set(dc_engine *e, int seq, int len, int mtp_len, dc_err *err);
/* engine_row: the cache row of layer l at position j of sequence seq
 * (view.row elements: float32, or bfloat16 when view.bf16). */
void *engine_row(const dc_engine *e, int seq, int l, int j);
/* the engine and sequence under a dc_session (session.c) */
dc_engine *session_engine(const dc_session *s);
int session_seq(const dc_session *s);
#endif
