/* A plain C buddy allocator replaying kalloc/kfree events: the yardstick of
 * benchmarks/bench_marginal.py (issue #21: ptpair's replay of any Parquet trace within
 * 1.5x of this, per event at the margin).
 *
 * The same semantics as ptpair's default allocator (docs/semantics.md, "Allocator";
 * sim/buddy.py), written the way one would in C, with nothing else per event:
 *   - boot: all frames free, carved in address order into the largest aligned blocks of
 *     order <= MAX_ORDER that fit;
 *   - alloc of order k: the smallest order j >= k with a free block, its lowest-addressed
 *     block (two-level bitmaps per order: a bit per block, a summary bit per 64-bit word,
 *     found with count-trailing-zeros), split keeping the lower half, each upper half freed
 *     at its order (mm/page_alloc.c: expand()); none: a failure of order k;
 *   - free: merge with the buddy (frame ^ 2^k) while it is a free block of the same order
 *     (mm/page_alloc.c: __free_one_page());
 *   - handles are any 64-bit integers, kept in an open-addressing table (linear probing,
 *     Fibonacci hashing, backward-shift deletion); a kfree of a failed kalloc does nothing.
 *
 * Input (binary, native endianness): int64 frames, int64 events, then int8 op[events]
 * (OP_KALLOC or OP_KFREE below), int64 handle[events], int8 order[events].
 * Output: one JSON line -- events, failures per order, the final free blocks per order
 * (buddyinfo) and the replay loop's own time in ns per event.
 *
 *     cc -O2 -o buddy_ref buddy_ref.c && ./buddy_ref events.bin
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ORDER 10
#define N_ORDERS (MAX_ORDER + 1)
#define OP_KALLOC 0
#define OP_KFREE 1
#define NO_BLOCK (-1)
#define WORD_BITS 64
#define WORD_SHIFT 6
#define FIB_HASH 0x9E3779B97F4A7C15ull

static int64_t n_frames;
static int8_t *blk;                  /* order of the free block starting at a frame, or -1 */
static uint64_t *bm[N_ORDERS];       /* a bit per block of the order */
static uint64_t *sm[N_ORDERS];       /* a bit per nonzero word of bm */
static int64_t hint[N_ORDERS];       /* every summary word below this one is zero */
static int64_t nr_free[N_ORDERS];
static int64_t failures[N_ORDERS];

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static void insert_free(int64_t frame, int k) {
    int64_t b = frame >> k, w = b >> WORD_SHIFT, s = w >> WORD_SHIFT;
    blk[frame] = (int8_t)k;
    nr_free[k]++;
    bm[k][w] |= 1ull << (b & (WORD_BITS - 1));
    sm[k][s] |= 1ull << (w & (WORD_BITS - 1));
    if (s < hint[k]) hint[k] = s;
}

static void remove_free(int64_t frame, int k) {
    int64_t b = frame >> k, w = b >> WORD_SHIFT;
    blk[frame] = NO_BLOCK;
    nr_free[k]--;
    bm[k][w] &= ~(1ull << (b & (WORD_BITS - 1)));
    if (bm[k][w] == 0) sm[k][w >> WORD_SHIFT] &= ~(1ull << (w & (WORD_BITS - 1)));
}

static int64_t lowest(int k) {
    int64_t s = hint[k];
    while (sm[k][s] == 0) s++;
    hint[k] = s;
    int64_t w = s * WORD_BITS + __builtin_ctzll(sm[k][s]);
    return (w * WORD_BITS + __builtin_ctzll(bm[k][w])) << k;
}

static int64_t buddy_alloc(int k) {
    int j = k;
    while (j < N_ORDERS && nr_free[j] == 0) j++;
    if (j == N_ORDERS) return NO_BLOCK;
    int64_t frame = lowest(j);
    remove_free(frame, j);
    while (j > k) { j--; insert_free(frame + (1ll << j), j); }
    return frame;
}

static void buddy_free(int64_t frame, int k) {
    while (k < MAX_ORDER) {
        int64_t buddy = frame ^ (1ll << k);
        if (buddy >= n_frames || blk[buddy] != k) break;
        remove_free(buddy, k);
        if (buddy < frame) frame = buddy;
        k++;
    }
    insert_free(frame, k);
}

static void boot(void) {
    for (int k = 0; k < N_ORDERS; k++) {
        int64_t words = ((n_frames >> k) + WORD_BITS - 1) / WORD_BITS;
        bm[k] = xcalloc(words, sizeof(uint64_t));
        sm[k] = xcalloc((words + WORD_BITS - 1) / WORD_BITS, sizeof(uint64_t));
    }
    blk = malloc(n_frames);
    memset(blk, NO_BLOCK, n_frames);
    for (int64_t f = 0; f < n_frames;) {
        int k = MAX_ORDER;
        while ((f & ((1ll << k) - 1)) || f + (1ll << k) > n_frames) k--;
        insert_free(f, k);
        f += 1ll << k;
    }
}

/* handles: open addressing, keys + a used byte per bucket */
static int64_t *h_key, *h_frame;
static int8_t *h_order, *h_used;     /* h_order -1: the kalloc failed */
static uint64_t h_mask;
static int64_t h_count;
static int h_bits;

static uint64_t home(int64_t key) { return ((uint64_t)key * FIB_HASH) >> (64 - h_bits); }

static void h_alloc(int bits) {
    h_bits = bits;
    h_mask = (1ull << bits) - 1;
    h_key = xcalloc(h_mask + 1, sizeof(int64_t));
    h_frame = xcalloc(h_mask + 1, sizeof(int64_t));
    h_order = xcalloc(h_mask + 1, 1);
    h_used = xcalloc(h_mask + 1, 1);
}

static int64_t h_find(int64_t key) {
    for (uint64_t i = home(key);; i = (i + 1) & h_mask) {
        if (!h_used[i]) return -1;
        if (h_key[i] == key) return (int64_t)i;
    }
}

static int64_t h_insert(int64_t key) {
    uint64_t i = home(key);
    while (h_used[i]) i = (i + 1) & h_mask;
    h_used[i] = 1;
    h_key[i] = key;
    h_count++;
    return (int64_t)i;
}

static void h_grow(void) {
    int64_t *key = h_key, *frame = h_frame;
    int8_t *order = h_order, *used = h_used;
    uint64_t n = h_mask + 1;
    h_alloc(h_bits + 1);
    h_count = 0;
    for (uint64_t i = 0; i < n; i++)
        if (used[i]) {
            int64_t j = h_insert(key[i]);
            h_frame[j] = frame[i];
            h_order[j] = order[i];
        }
    free(key); free(frame); free(order); free(used);
}

static void h_delete(uint64_t i) {
    /* Knuth's Algorithm R: pull back later entries whose probe passes through i */
    uint64_t j = i;
    for (;;) {
        j = (j + 1) & h_mask;
        if (!h_used[j]) break;
        uint64_t k = home(h_key[j]);
        if (((j - k) & h_mask) >= ((j - i) & h_mask)) {
            h_key[i] = h_key[j]; h_frame[i] = h_frame[j]; h_order[i] = h_order[j];
            i = j;
        }
    }
    h_used[i] = 0;
    h_count--;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s EVENTS.bin\n", argv[0]); return 2; }
    FILE *fp = fopen(argv[1], "rb");
    if (!fp) { perror(argv[1]); return 2; }
    int64_t n;
    if (fread(&n_frames, 8, 1, fp) != 1 || fread(&n, 8, 1, fp) != 1) { fprintf(stderr, "short header\n"); return 2; }
    int8_t *op = xcalloc(n, 1), *order = xcalloc(n, 1);
    int64_t *arg = xcalloc(n, 8);
    if (fread(op, 1, n, fp) != (size_t)n || fread(arg, 8, n, fp) != (size_t)n || fread(order, 1, n, fp) != (size_t)n) {
        fprintf(stderr, "short file\n");
        return 2;
    }
    fclose(fp);
    boot();
    h_alloc(16);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t i = 0; i < n; i++) {
        if (op[i] == OP_KALLOC) {
            if (2 * (h_count + 1) > (int64_t)(h_mask + 1)) h_grow();
            int64_t h = h_find(arg[i]);
            if (h < 0) h = h_insert(arg[i]);
            else if (h_order[h] >= 0) { fprintf(stderr, "event %lld: handle live\n", (long long)i); return 2; }
            int64_t f = buddy_alloc(order[i]);
            if (f < 0) { failures[order[i]]++; h_order[h] = -1; }
            else { h_frame[h] = f; h_order[h] = order[i]; }
        } else {
            int64_t h = h_find(arg[i]);
            if (h < 0) { fprintf(stderr, "event %lld: unknown handle\n", (long long)i); return 2; }
            if (h_order[h] >= 0) buddy_free(h_frame[h], h_order[h]);
            h_delete((uint64_t)h);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (n ? n : 1);
    printf("{\"events\": %lld, \"replay_ns_per_event\": %.2f, \"failures\": [", (long long)n, ns);
    for (int k = 0; k < N_ORDERS; k++) printf("%s%lld", k ? ", " : "", (long long)failures[k]);
    printf("], \"buddyinfo\": [");
    for (int k = 0; k < N_ORDERS; k++) printf("%s%lld", k ? ", " : "", (long long)nr_free[k]);
    printf("]}\n");
    return 0;
}
