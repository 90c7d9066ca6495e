/*
 * cb_records.h - the neutral header: what crosses between the card, the
 * kernels, the channel scheduler and Python.
 *
 * It defines the per-tick sizes, the line laws, the status codes, every event
 * and command kind, and the layout of the records the two rings carry
 * (commands in, events out). Each record is a fixed head followed by a
 * payload of `len` octets (a Q.921 frame, an MFC/R2 signal, a notice), so new
 * kinds never need a new ring type. The card HAL (drivers/include/cb_hal.h)
 * and the kernels (dsp/include/) each know only this header; the channel
 * scheduler (dsp/sched/) is the one unit that sees both.
 *
 * Between CDEF BEGIN and CDEF END this header is also the cffi cdef of every
 * extension, so Python takes the same numbers from here.
 */
#ifndef CB_RECORDS_H
#define CB_RECORDS_H

#include <stdint.h>

/* CDEF BEGIN */
#define CB_TICK_SAMPLES 8       /* samples (octets) per channel per 1 ms tick */
#define CB_MAX_BLOCK_TICKS 20   /* largest block: 20 ticks, one DAHDI read of 160 octets */
#define CB_MAX_PAYLOAD 264      /* largest record payload, octets: a Q.921 frame (address 2,
                                   control 2, N201 260) */
#define CB_REC_ALIGN 8          /* records in a ring start on 8-octet boundaries */
#define CB_EVENTS_PER_CHAN_TICK 8 /* most events one channel can raise in one tick (card and
                                     kernels together): the ring sizes are derived from it */
#define CB_KIND_SLOTS 128       /* per-kind counters: card kinds 0-63, DSP kinds 64-127 */

/* Line laws. */
enum cb_law {
    CB_LAW_ALAW = 0,
    CB_LAW_ULAW = 1
};

/* Status codes of every C layer. 0 is success. */
enum cb_status {
    CB_OK = 0,
    CB_ERR_NOMEM = -1,
    CB_ERR_INVALID = -2,    /* an argument out of range */
    CB_ERR_FULL = -3,       /* a ring is full */
    CB_ERR_STATE = -4,      /* not permitted in the current state */
    CB_ERR_IO = -5,         /* an OS call failed */
    CB_ERR_NODEV = -6,      /* no such device */
    CB_ERR_PERM = -7,       /* not permitted by the OS */
    CB_ERR_NOTSUP = -8,     /* the card or kernel does not have this operation */
    CB_ERR_LIMIT = -9       /* a documented size limit reached (edges into a channel, members of a group) */
};

/* Event kinds (cb_event_t.type). Card events are below 0x100, DSP and
 * scheduler events from 0x100 on. */
enum cb_event_type {
    CB_EV_NONE = 0,
    CB_EV_HOOK_OFF = 1,     /* FXS port: the phone went off hook (value unused) */
    CB_EV_HOOK_ON = 2,      /* FXS port: on hook longer than the flash window; tick = when it went on hook */
    CB_EV_FLASH = 3,        /* FXS port: on hook inside the flash window, then off hook; extra = on-hook ms */
    CB_EV_RING_ON = 4,      /* FXO port: ringing voltage started */
    CB_EV_RING_OFF = 5,     /* FXO port: ringing voltage stopped */
    CB_EV_BATTERY = 6,      /* FXO port: value 1 battery present, 0 battery lost */
    CB_EV_POLARITY = 7,     /* FXO port: polarity reversed; value = new polarity (0 normal, 1 reversed) */
    CB_EV_FAR_ERROR = 8,    /* far end refused: value = cb_far_error code, extra = detail */
    CB_EV_FAR_UP = 9,       /* far-end peer attached: value = number of channels claimed */
    CB_EV_FAR_DOWN = 10,    /* far-end peer detached (closed or refused) */
    CB_EV_FAR_LATE = 11,    /* realtime: far-end answer late, block filled with idle; value = late count */
    CB_EV_CMD_DONE = 12,    /* card command acknowledged: value = op, extra = status */
    CB_EV_CARD_ERROR = 13,  /* the card's exchange failed: value = cb_status; the scheduler backs off */
    CB_EV_FRAME = 14,       /* a D-channel frame from the line (FCS checked and removed): chan = the
                               D-channel timeslot, payload = the frame */
    CB_EV_ALARM = 15,       /* a span's alarm bits changed: chan = its first timeslot's channel,
                               value = enum cb_span_alarm bits (state and detail) */
    CB_EV_CAS = 16,         /* the ABCD bits a CAS timeslot receives changed: value = ABCD (low 4 bits) */

    CB_EV_DTMF = 0x100,     /* digit detected (key up): value = ASCII digit, extra = duration in ms */
    CB_EV_DTMF_DOWN = 0x101,/* digit key down: value = ASCII digit */
    CB_EV_FSK_BYTE = 0x102, /* FSK receiver: value = received byte */
    CB_EV_FSK_CARRIER = 0x103, /* FSK receiver: value 1 carrier up, 0 carrier down */
    CB_EV_FSK_TX_DONE = 0x104, /* FSK transmitter finished its message */
    CB_EV_DTMF_TX_DONE = 0x105,/* DTMF generator finished its digit string */
    CB_EV_TONE_DONE = 0x106,/* a tone that plays once finished */
    CB_EV_PLAY_DONE = 0x107,/* prompt player reached the end; value = samples played */
    CB_EV_BUSY = 0x108,     /* busy-cadence detector: value = cadences counted */
    CB_EV_MEDIA_ERROR = 0x109, /* a media command failed: value = op, extra = cb_status code */
    CB_EV_LOOPBACK = 0x10A, /* a record sent back as it came (CB_CMD_LOOPBACK): the payload is the command's */
    CB_EV_ECHO = 0x10B,     /* echo canceller state changed: value = cb_echo_state, extra = cb_echo_reason
                               (dsp/include/cb_echo.h) */
    CB_EV_ANS = 0x10C       /* 2100 Hz answer tone on a channel whose canceller is on: value 1 with phase
                               reversals (the canceller is tone-disabled), 0 without (600 ms of it, once a
                               tone); extra = the path (0 Rin, 1 Sin) */
};

/* Far-end refusal reasons (CB_EV_FAR_ERROR value). */
enum cb_far_error {
    CB_FAR_OK = 0,
    CB_FAR_SHORT = 1,       /* connection closed or short read inside a message */
    CB_FAR_BAD_TYPE = 2,    /* unknown message type */
    CB_FAR_BAD_LENGTH = 3,  /* length does not match the block's shape */
    CB_FAR_BAD_SEQUENCE = 4,/* sequence number is not the one expected */
    CB_FAR_BAD_TICK = 5,    /* first tick is not the block's first tick */
    CB_FAR_BAD_EVENT = 6,   /* an event names an unknown channel or type */
    CB_FAR_IO = 7,          /* a socket error (errno in extra) */
    CB_FAR_TOO_LONG = 8,    /* a message longer than the largest block could be (extra = its length) */
    CB_FAR_BAD_COUNT = 9,   /* more events than one block may carry (extra = the count) */
    CB_FAR_TIMEOUT = 10,    /* lockstep: no answer within the dead-peer limit */
    CB_FAR_LATE_RUN = 11,   /* realtime: answers too late for the dead-peer number of blocks in a row */
    CB_FAR_STALLED = 12,    /* the peer stopped reading: its blocks could not be handed over, as many in a row */
    CB_FAR_START_MISSED = 13 /* the peer was handed to the card after its first block (its HELLO's tick) */
};

/* Command kinds (cb_cmd_t.op). Card commands are below 0x100, media commands
 * from 0x100 on. */
enum cb_cmd_op {
    CB_CMD_NONE = 0,
    /* FXS port (we are the exchange, a phone on the far side) */
    CB_CMD_RING = 1,        /* a,b,c,d = on,off,on,off ms of the cadence (c=d=0: one pair); repeats */
    CB_CMD_RING_STOP = 2,
    CB_CMD_BATTERY = 3,     /* a = 1 battery on, 0 battery off (open loop) */
    CB_CMD_POLARITY = 4,    /* a = 0 normal, 1 reversed */
    /* FXO port (we are a phone line on an exchange) */
    CB_CMD_HOOK = 5,        /* a = 1 off hook (seize/answer), 0 on hook */
    CB_CMD_FLASH = 6,       /* a = flash duration ms */
    /* far end */
    CB_CMD_FAR_ATTACH = 7,  /* a = fd of a peer that said HELLO; ptr = uint16_t[] channels, b = count */
    CB_CMD_FAR_DETACH = 8,
    CB_CMD_FRAME = 9,       /* a frame to send on a D-channel timeslot (chan): payload = the frame, without FCS */
    CB_CMD_CAS_TX = 10,     /* a CAS timeslot (chan) sends ABCD = a (low 4 bits; 0000 is refused) */

    /* media commands */
    CB_CMD_LAW = 0x100,     /* a = cb_law of the channel */
    CB_CMD_BRIDGE = 0x101,  /* chan and a hear each other at 0 dB (two one-way edges) */
    CB_CMD_UNBRIDGE = 0x102,/* remove every edge into chan, and chan's edges into those it heard */
    CB_CMD_TONE = 0x103,    /* a = cb_tone id of the channel's zone (b = zone); -1 stops */
    CB_CMD_DTMF_TX = 0x104, /* ptr = NUL-terminated digits, owned by the caller until DTMF_TX_DONE; a = on ms, b = off ms, c = high group, d = low group level in cdB (dBm0 x 100) */
    CB_CMD_FSK_TX = 0x105,  /* ptr = bytes, a = length, b = cb_fsk_standard, c = seizure bits | mark bits << 16, d = level cdB (dBm0 x 100) */
    CB_CMD_PLAY = 0x106,    /* ptr = int16 linear samples, a = count to play; owned by the caller until PLAY_DONE;
                               b = samples in the buffer (0: a), the play going round it; c = cb_play_coded */
    CB_CMD_STOP_PLAY = 0x107,
    CB_CMD_DETECT = 0x108,  /* a = bit set of cb_detect to enable on chan (0 disables all) */
    CB_CMD_FSK_RX = 0x109,  /* a = cb_fsk_standard to receive with, -1 off */
    CB_CMD_BUSY_DETECT = 0x10A, /* a = on ms, b = off ms, c = cadences to count (0 = off) */
    CB_CMD_SILENCE = 0x10B, /* stop every generator on chan */
    CB_CMD_LISTEN = 0x10C,  /* chan hears a's received signal with gain b (cdB, -6000..+1800: -60..+18 dB,
                               CB_MIX_GAIN_MIN..CB_MIX_GAIN_MAX); replaces an edge a->chan */
    CB_CMD_UNLISTEN = 0x10D,/* chan stops hearing a (a = -1: every edge into chan); a not heard: CB_ERR_STATE */
    CB_CMD_MIX_JOIN = 0x10E,/* chan joins mix group a with flags c (cb_mix_flags), its contribution at gain b
                               (cdB, -6000..+1800); a conference takes CB_MIX_CONF_MAX members, a paging
                               group (CB_MIX_PAGING) CB_MIX_GROUP_MAX: one more is CB_ERR_LIMIT */
    CB_CMD_MIX_LEAVE = 0x10F,/* chan leaves its mix group */
    CB_CMD_TAP = 0x110,     /* ptr = cb_tap_t (dsp/include/cb_mix.h): copy chan's rx and tx into it;
                               owned by the caller until a CB_CMD_TAP_STOP was applied */
    CB_CMD_TAP_STOP = 0x111,
    CB_CMD_LOOPBACK = 0x112,/* send the payload back as a CB_EV_LOOPBACK event (tests of the rings) */
    CB_CMD_ECHO = 0x113     /* echo canceller of chan: a = taps (0 off; CB_ECHO_TAPS_MIN..MAX, a multiple of
                               8), b = cb_echo_flags; on resets it. CB_EV_ECHO answers (reason command) */
};

/* Detector bits for CB_CMD_DETECT. */
enum cb_detect {
    CB_DETECT_DTMF = 1
};

/* Mix group membership (CB_CMD_MIX_JOIN c). */
enum cb_mix_flags {
    CB_MIX_TALK = 1,        /* the member's received signal goes into the group */
    CB_MIX_HEAR = 2,        /* the member hears the group (less its own contribution) */
    CB_MIX_PAGING = 4       /* the group is a paging group (set by its first member; every join must agree) */
};

/* The head of one event record out of the scheduler; `len` octets of payload
 * follow it in the ring. */
typedef struct cb_event {
    uint64_t tick;      /* media tick at which it happened */
    uint16_t chan;      /* channel index */
    uint16_t type;      /* enum cb_event_type */
    uint16_t len;       /* payload octets that follow (0..CB_MAX_PAYLOAD) */
    uint16_t flags;     /* 0 */
    int32_t value;      /* type-specific */
    int32_t extra;      /* type-specific */
} cb_event_t;

/* The head of one command record into the scheduler; `len` octets of payload
 * follow it in the ring. */
typedef struct cb_cmd {
    uint16_t op;        /* enum cb_cmd_op */
    uint16_t chan;      /* channel index */
    uint16_t len;       /* payload octets that follow (0..CB_MAX_PAYLOAD) */
    uint16_t flags;     /* 0 */
    int32_t a, b, c, d; /* op-specific */
    uint64_t ptr;       /* op-specific address, owned by the sender */
} cb_cmd_t;

/* Channel kinds reported by a card. */
enum cb_chan_kind {
    CB_CHAN_FXO = 0,    /* analog trunk port: an exchange on the far side */
    CB_CHAN_FXS = 1,    /* analog phone port: a phone on the far side */
    CB_CHAN_TS = 2      /* a timeslot of an E1/T1 span */
};

/*! \brief Text of a cb_status code ("invalid argument"); "unknown status" otherwise. */
const char *cb_status_text(int status);
/*! \brief Counter slot of an event kind (0..CB_KIND_SLOTS-1). */
int cb_kind_slot(int type);
/* CDEF END */

static inline const char *cb_status_text_inline(int status)
{
    switch (status) {
    case CB_OK: return "ok";
    case CB_ERR_NOMEM: return "out of memory";
    case CB_ERR_INVALID: return "invalid argument";
    case CB_ERR_FULL: return "ring full";
    case CB_ERR_STATE: return "not permitted in the current state";
    case CB_ERR_IO: return "I/O error";
    case CB_ERR_NODEV: return "no such device";
    case CB_ERR_PERM: return "not permitted by the OS";
    case CB_ERR_NOTSUP: return "not supported";
    case CB_ERR_LIMIT: return "limit reached";
    default: return "unknown status";
    }
}

static inline int cb_kind_slot_inline(int type)
{
    return type < 0x100 ? (type & 63) : 64 + ((type - 0x100) & 63);
}

/* Octets a record of head `head` and payload `len` takes in a ring. */
#define CB_REC_SIZE(head, len) ((((uint32_t) (head) + (uint32_t) (len)) + (CB_REC_ALIGN - 1U)) \
                                & ~(uint32_t) (CB_REC_ALIGN - 1U))

#endif
