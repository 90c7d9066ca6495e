/* spandsp as the independent peer of the end-to-end tests. */

/* DTMF digits as spandsp sends them (its default level and timing). */
static int cbpeer_dtmf_tx(const char *digits, int16_t *out, int max)
{
    dtmf_tx_state_t *s = dtmf_tx_init(NULL);
    if (s == NULL)
        return -1;
    dtmf_tx_put(s, digits, -1);
    int n = 0;
    for (;;) {
        int got = dtmf_tx(s, out + n, max - n > 160 ? 160 : max - n);
        if (got <= 0)
            break;
        n += got;
        if (n >= max)
            break;
    }
    dtmf_tx_free(s);
    return n;
}

typedef struct {
    char *number;
    int max;
    int found;
    adsi_rx_state_t *rx;
} cbpeer_cid_t;

static void cbpeer_put_msg(void *user, const uint8_t *msg, int len)
{
    cbpeer_cid_t *c = user;
    if (len <= 0 || c->found)
        return;
    int pos = 0;
    uint8_t type;
    const uint8_t *body;
    int flen;
    while ((pos = adsi_next_field(c->rx, msg, len, pos, &type, &body, &flen)) > 0) {
        if (body != NULL && (type == MCLASS_CALLER_NUMBER || (msg[0] == CLASS_SDMF_CALLERID && flen > 8))) {
            int off = type == MCLASS_CALLER_NUMBER ? 0 : 8;
            int n = flen - off < c->max - 1 ? flen - off : c->max - 1;
            memcpy(c->number, body + off, (size_t) n);
            c->number[n] = '\0';
            c->found = 1;
        }
    }
}

/* Caller ID as a CLASS (Bell 202) phone would read it: the caller's number, or "" */
static int cbpeer_class_number(const int16_t *amp, int len, char *number, int max)
{
    cbpeer_cid_t c = {number, max, 0, NULL};
    number[0] = '\0';
    c.rx = adsi_rx_init(NULL, ADSI_STANDARD_CLASS, cbpeer_put_msg, &c);
    if (c.rx == NULL)
        return -1;
    for (int i = 0; i + 160 <= len; i += 160)
        adsi_rx(c.rx, amp + i, 160);
    adsi_rx_free(c.rx);
    return c.found;
}
