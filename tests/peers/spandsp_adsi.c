/* spandsp's caller ID transmitter and receiver as the independent peer. */

/* Build an MDMF caller ID message (CLASS or CLIP: date-time, number, name) or a
 * CLIP_DTMF one (number only) the way spandsp does, and render it to samples. */
static int cbpeer_adsi_tx(int standard, const char *datetime, const char *number, const char *name,
                          int16_t *out, int max)
{
    adsi_tx_state_t *s = adsi_tx_init(NULL, standard);
    uint8_t msg[256];
    int len;
    if (s == NULL)
        return -1;
    if (standard == ADSI_STANDARD_CLIP_DTMF) {
        len = adsi_add_field(s, msg, -1, CLIP_DTMF_C_TERMINATED, NULL, 0);
        len = adsi_add_field(s, msg, len, CLIP_DTMF_C_CALLER_NUMBER, (const uint8_t *) number, (int) strlen(number));
    } else {
        len = adsi_add_field(s, msg, -1, CLASS_MDMF_CALLERID, NULL, 0);
        if (datetime && *datetime)
            len = adsi_add_field(s, msg, len, MCLASS_DATETIME, (const uint8_t *) datetime, (int) strlen(datetime));
        if (number && *number)
            len = adsi_add_field(s, msg, len, MCLASS_CALLER_NUMBER, (const uint8_t *) number, (int) strlen(number));
        if (name && *name)
            len = adsi_add_field(s, msg, len, MCLASS_CALLER_NAME, (const uint8_t *) name, (int) strlen(name));
    }
    adsi_tx_put_message(s, msg, len);
    int n = 0;
    for (;;) {
        int got = adsi_tx(s, out + n, max - n > 160 ? 160 : max - n);
        if (got <= 0 || n + got >= max)
            break;
        n += got;
    }
    adsi_tx_free(s);
    return n;
}

typedef struct {
    uint8_t *msg;
    int max;
    int len;
} cbpeer_msg_t;

static void cbpeer_keep_msg(void *user, const uint8_t *msg, int len)
{
    cbpeer_msg_t *m = user;
    if (len > 0 && m->len == 0) {
        m->len = len < m->max ? len : m->max;
        memcpy(m->msg, msg, (size_t) m->len);
    }
}

/* spandsp's receiver: the first message it reports (its raw octets), or 0. */
static int cbpeer_adsi_rx(int standard, const int16_t *amp, int len, uint8_t *msg, int max)
{
    cbpeer_msg_t m = {msg, max, 0};
    adsi_rx_state_t *s = adsi_rx_init(NULL, standard, cbpeer_keep_msg, &m);
    if (s == NULL)
        return -1;
    for (int i = 0; i + 160 <= len; i += 160)
        adsi_rx(s, amp + i, 160);
    adsi_rx_free(s);
    return m.len;
}

/* One field of a received message, walked with spandsp's own parser. */
static int cbpeer_adsi_field(int standard, const uint8_t *msg, int len, int want_type, char *out, int max)
{
    adsi_rx_state_t *s = adsi_rx_init(NULL, standard, NULL, NULL);
    int pos = 0, found = 0;
    uint8_t type;
    const uint8_t *body;
    int flen;
    out[0] = '\0';
    while ((pos = adsi_next_field(s, msg, len, pos, &type, &body, &flen)) > 0) {
        if (body != NULL && type == want_type) {
            int n = flen < max - 1 ? flen : max - 1;
            memcpy(out, body, (size_t) n);
            out[n] = '\0';
            found = 1;
        }
    }
    adsi_rx_free(s);
    return found;
}
