/*
 * The card HAL's dispatchers: an optional operation a card does not have
 * answers CB_ERR_NOTSUP, so callers go through one status checker.
 */
#include <stddef.h>
#include "cb_card.h"

uint32_t cb_card_caps(const cb_card_t *card)
{
    return card->caps;
}

int cb_card_line_levels(cb_card_t *card, uint8_t *out, int n)
{
    if (card->ops->line_levels == NULL)
        return CB_ERR_NOTSUP;
    if (n < 0 || n > card->nchan)
        return CB_ERR_INVALID;
    return card->ops->line_levels(card, out, n);
}

int cb_card_span_config(cb_card_t *card, int span, const cb_span_config_t *cfg)
{
    return card->ops->span_config ? card->ops->span_config(card, span, cfg) : CB_ERR_NOTSUP;
}

int cb_card_span_status(cb_card_t *card, int span, cb_span_status_t *out)
{
    return card->ops->span_status ? card->ops->span_status(card, span, out) : CB_ERR_NOTSUP;
}

int cb_card_sync_source(cb_card_t *card, int span)
{
    return card->ops->sync_source ? card->ops->sync_source(card, span) : CB_ERR_NOTSUP;
}

int cb_card_abcd_set(cb_card_t *card, int chan, int bits)
{
    return card->ops->abcd_set ? card->ops->abcd_set(card, chan, bits) : CB_ERR_NOTSUP;
}

int cb_card_abcd_get(cb_card_t *card, int chan)
{
    return card->ops->abcd_get ? card->ops->abcd_get(card, chan) : CB_ERR_NOTSUP;
}

int cb_card_hdlc_send(cb_card_t *card, int chan, const uint8_t *frame, int len)
{
    if (card->ops->hdlc_send == NULL)
        return CB_ERR_NOTSUP;
    if (len < 0 || len > CB_MAX_PAYLOAD)
        return CB_ERR_INVALID;
    return card->ops->hdlc_send(card, chan, frame, len);
}

int cb_card_hdlc_recv(cb_card_t *card, int chan, uint8_t *frame, int max)
{
    return card->ops->hdlc_recv ? card->ops->hdlc_recv(card, chan, frame, max) : CB_ERR_NOTSUP;
}
