/* spandsp's cadenced tone generator behind opaque pointers, so the tone tests
 * declare no spandsp types (other areas may declare them too). Test-only. */

typedef struct tonepeer {
    tone_gen_descriptor_t *desc;
    tone_gen_state_t *gen;
} tonepeer_t;

/* Levels in dBm0, durations in ms (spandsp's tone_gen_descriptor_init()).
 * Returns NULL when out of memory. */
static void *tonepeer_new(int f1, int l1, int f2, int l2, int on1, int off1, int on2, int off2,
                          int repeat)
{
    tonepeer_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->desc = tone_gen_descriptor_init(NULL, f1, l1, f2, l2, on1, off1, on2, off2, repeat);
    p->gen = p->desc != NULL ? tone_gen_init(NULL, p->desc) : NULL;
    if (p->gen == NULL) {
        if (p->desc != NULL)
            tone_gen_descriptor_free(p->desc);
        free(p);
        return NULL;
    }
    return p;
}

static int tonepeer_gen(void *p, int16_t *amp, int n)
{
    return tone_gen(((tonepeer_t *) p)->gen, amp, n);
}

static void tonepeer_free(void *p)
{
    tonepeer_t *t = p;
    tone_gen_free(t->gen);
    tone_gen_descriptor_free(t->desc);
    free(t);
}
