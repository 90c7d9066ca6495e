/* spandsp's caller ID receiver kept running across calls of cidpeer_feed(), behind an opaque
 * pointer: the simulated phone of the end-to-end tests reads the caller ID the card sends it,
 * a control period at a time. Test-only. */

#define CIDPEER_MAX 16

typedef struct cidpeer {
    adsi_rx_state_t *rx;
    int count;                      /* messages received, up to CIDPEER_MAX */
    int taken;                      /* messages handed out by cidpeer_take() */
    char number[CIDPEER_MAX][32];   /* each message's caller number ("" when it has none) */
} cidpeer_t;

static void cidpeer_put_msg(void *user, const uint8_t *msg, int len)
{
    cidpeer_t *p = user;
    if (len <= 0 || p->count >= CIDPEER_MAX)
        return;
    char *out = p->number[p->count++];
    out[0] = '\0';
    int pos = 0;
    uint8_t type;
    const uint8_t *body;
    int flen;
    while ((pos = adsi_next_field(p->rx, msg, len, pos, &type, &body, &flen)) > 0) {
        if (body != NULL && type == MCLASS_CALLER_NUMBER) {
            int n = flen < 31 ? flen : 31;
            memcpy(out, body, (size_t) n);
            out[n] = '\0';
        }
    }
}

/* A receiver for `standard` (ADSI_STANDARD_CLASS or ADSI_STANDARD_CLIP); NULL when out of memory. */
static void *cidpeer_new(int standard)
{
    cidpeer_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->rx = adsi_rx_init(NULL, standard, cidpeer_put_msg, p);
    if (p->rx == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

/* Feed 16-bit linear samples (8 kHz); returns the messages received so far and not yet taken. */
static int cidpeer_feed(void *p, const int16_t *amp, int n)
{
    cidpeer_t *c = p;
    adsi_rx(c->rx, amp, n);
    return c->count - c->taken;
}

/* The next received message's caller number into `number` (at most max - 1 characters); 1 if
 * there was one, 0 if none is waiting. */
static int cidpeer_take(void *p, char *number, int max)
{
    cidpeer_t *c = p;
    if (c->taken >= c->count || max <= 0)
        return 0;
    const char *src = c->number[c->taken++];
    size_t n = strlen(src) < (size_t) (max - 1) ? strlen(src) : (size_t) (max - 1);
    memcpy(number, src, n);
    number[n] = '\0';
    return 1;
}

static void cidpeer_free(void *p)
{
    cidpeer_t *c = p;
    adsi_rx_free(c->rx);
    free(c);
}
