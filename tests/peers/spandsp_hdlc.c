/* spandsp's HDLC transmitter and receiver behind an opaque pointer, with the
 * bulk loops in C (thousands of frames without Python per octet). Test-only.
 *
 * spandsp's octets (hdlc_tx_get_byte, hdlc_rx_put_byte) are 8 consecutive
 * line bits, the first in the MSB: hdlc_tx_get_bit hands out a byte from bit 7
 * down, and hdlc_rx_put_byte feeds its bits to the bit receiver from bit 7 down.
 * hdlcpeer_tx_bits gives the bit-API view so a test can check that. */

typedef struct hdlcpeer {
    hdlc_tx_state_t *tx;
    hdlc_rx_state_t *rx;
    /* transmit: the frames still to send (concatenated) */
    const uint8_t *frames;
    const int *lens;
    int nframes;
    int next;
    size_t off;
    int done;                 /* the last frame's closing flag is out */
    /* receive: where good frames go */
    uint8_t *rx_out;
    int *rx_lens;
    int rx_max_frames;
    size_t rx_max_bytes;
    int rx_count;
    size_t rx_used;
    int rx_overflow;
} hdlcpeer_t;

/* Underflow: the frame (or the leading flags) went out; queue the next frame. */
static void hdlcpeer_underflow(void *user)
{
    hdlcpeer_t *p = user;
    if (p->next < p->nframes) {
        hdlc_tx_frame(p->tx, p->frames + p->off, (size_t) p->lens[p->next]);
        p->off += (size_t) p->lens[p->next];
        p->next++;
    } else {
        p->done = 1;
    }
}

static void hdlcpeer_frame(void *user, const uint8_t *pkt, int len, int ok)
{
    hdlcpeer_t *p = user;
    if (pkt == NULL || len < 0 || !ok)
        return;                   /* a status report, or a bad frame (not asked for) */
    if (p->rx_count >= p->rx_max_frames || p->rx_used + (size_t) len > p->rx_max_bytes) {
        p->rx_overflow = 1;
        return;
    }
    memcpy(p->rx_out + p->rx_used, pkt, (size_t) len);
    p->rx_lens[p->rx_count++] = len;
    p->rx_used += (size_t) len;
}

/* CRC-16 FCS, one flag between frames (the minimum), whole frames (not
 * progressive); the receiver: CRC-16, good frames only, framing after 1 flag. */
static void *hdlcpeer_new(void)
{
    hdlcpeer_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->tx = hdlc_tx_init(NULL, 0, 1, 0, hdlcpeer_underflow, p);
    p->rx = hdlc_rx_init(NULL, 0, 0, 1, hdlcpeer_frame, p);
    if (p->tx == NULL || p->rx == NULL) {
        if (p->tx != NULL)
            hdlc_tx_free(p->tx);
        if (p->rx != NULL)
            hdlc_rx_free(p->rx);
        free(p);
        return NULL;
    }
    return p;
}

static void hdlcpeer_free(void *vp)
{
    hdlcpeer_t *p = vp;
    hdlc_tx_free(p->tx);
    hdlc_rx_free(p->rx);
    free(p);
}

/* Send nframes frames (lens[i] octets each, concatenated in frames) after
 * lead_flags flags, then tail more octets (flags). Returns the octets written
 * to out, or -1 if max_out is too small. */
static int hdlcpeer_tx_frames(void *vp, const uint8_t *frames, const int *lens, int nframes, int lead_flags,
                              int tail, uint8_t *out, int max_out)
{
    hdlcpeer_t *p = vp;
    p->frames = frames;
    p->lens = lens;
    p->nframes = nframes;
    p->next = 0;
    p->off = 0;
    p->done = 0;
    hdlc_tx_flags(p->tx, lead_flags);
    int n = 0;
    while (!p->done) {
        if (n >= max_out)
            return -1;
        out[n++] = (uint8_t) hdlc_tx_get_byte(p->tx);
    }
    for (int i = 0; i < tail; i++) {
        if (n >= max_out)
            return -1;
        out[n++] = (uint8_t) hdlc_tx_get_byte(p->tx);
    }
    return n;
}

/* One frame after lead_flags flags, through the bit API: nbits line bits, one per octet (0/1). */
static int hdlcpeer_tx_bits(const uint8_t *frame, int len, int lead_flags, uint8_t *bits, int nbits)
{
    hdlc_tx_state_t *tx = hdlc_tx_init(NULL, 0, 1, 0, NULL, NULL);
    if (tx == NULL)
        return -1;
    hdlc_tx_flags(tx, lead_flags);
    hdlc_tx_frame(tx, frame, (size_t) len);
    for (int i = 0; i < nbits; i++)
        bits[i] = (uint8_t) hdlc_tx_get_bit(tx);
    hdlc_tx_free(tx);
    return nbits;
}

/* The same frame through the byte API: n octets. */
static int hdlcpeer_tx_octets(const uint8_t *frame, int len, int lead_flags, uint8_t *out, int n)
{
    hdlc_tx_state_t *tx = hdlc_tx_init(NULL, 0, 1, 0, NULL, NULL);
    if (tx == NULL)
        return -1;
    hdlc_tx_flags(tx, lead_flags);
    hdlc_tx_frame(tx, frame, (size_t) len);
    for (int i = 0; i < n; i++)
        out[i] = (uint8_t) hdlc_tx_get_byte(tx);
    hdlc_tx_free(tx);
    return n;
}

/* Receive n line octets; good frames go to frames_out (concatenated) and
 * lens_out. Returns the frames collected by this call, or -1 if they did not fit. */
static int hdlcpeer_rx(void *vp, const uint8_t *in, int n, uint8_t *frames_out, int *lens_out, int max_frames,
                       int max_bytes)
{
    hdlcpeer_t *p = vp;
    p->rx_out = frames_out;
    p->rx_lens = lens_out;
    p->rx_max_frames = max_frames;
    p->rx_max_bytes = (size_t) max_bytes;
    p->rx_count = 0;
    p->rx_used = 0;
    p->rx_overflow = 0;
    hdlc_rx_put(p->rx, in, n);
    return p->rx_overflow ? -1 : p->rx_count;
}

/* The receiver's counters: good frames, CRC errors, length errors, aborts. */
static void hdlcpeer_rx_stats(void *vp, unsigned long *out)
{
    hdlc_rx_stats_t st;
    hdlc_rx_get_stats(((hdlcpeer_t *) vp)->rx, &st);
    out[0] = st.good_frames;
    out[1] = st.crc_errors;
    out[2] = st.length_errors;
    out[3] = st.aborts;
}
