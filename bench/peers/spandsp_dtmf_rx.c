/* The benchmark's reference run: spandsp's DTMF receiver over many channels,
 * each with its own state, fed chunk by chunk with the channels interleaved
 * (as a media tier would), all in C. sig is channel-major (channel c at
 * sig[c * len]); digits is nchan rows of maxd characters, NUL-terminated.
 * Returns the total number of digits, or -1. Compiled into both bench
 * bindings: against the shipped library and against the rebuilt one. */
static int bench_dtmf_rx_run(int nchan, const int16_t *sig, int len, int chunk, char *digits, int maxd)
{
    dtmf_rx_state_t **st = calloc((size_t) nchan, sizeof(*st));
    if (st == NULL)
        return -1;
    for (int c = 0; c < nchan; c++)
        if ((st[c] = dtmf_rx_init(NULL, NULL, NULL)) == NULL) {
            while (c-- > 0)
                dtmf_rx_free(st[c]);
            free(st);
            return -1;
        }
    for (int off = 0; off + chunk <= len; off += chunk)
        for (int c = 0; c < nchan; c++)
            dtmf_rx(st[c], sig + (size_t) c * (size_t) len + off, chunk);
    int total = 0;
    for (int c = 0; c < nchan; c++) {
        int n = dtmf_rx_get(st[c], digits + (size_t) c * (size_t) maxd, maxd - 1);
        digits[(size_t) c * (size_t) maxd + (n > 0 ? n : 0)] = '\0';
        total += n > 0 ? n : 0;
        dtmf_rx_free(st[c]);
    }
    free(st);
    return total;
}
