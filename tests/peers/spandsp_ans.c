/* spandsp's modem connect tone generator (ANS, ANS/PR, ANSam, ...) behind an opaque pointer, for
 * the echo canceller's tone disabler tests. Test-only. */

/* tone: MODEM_CONNECT_TONES_ANS (2), _ANS_PR (3), ... Returns NULL when out of memory. */
static void *anspeer_new(int tone)
{
    return modem_connect_tones_tx_init(NULL, tone);
}

static int anspeer_gen(void *p, int16_t *amp, int n)
{
    return modem_connect_tones_tx((modem_connect_tones_tx_state_t *) p, amp, n);
}

static void anspeer_free(void *p)
{
    modem_connect_tones_tx_free((modem_connect_tones_tx_state_t *) p);
}
