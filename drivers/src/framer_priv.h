/*
 * framer_priv.h - the framer's state (cb_framer.h), shared by framer.c
 * (new/free/config, queries) and tick/framer_tick.c (per tick).
 */
#ifndef CB_FRAMER_PRIV_H
#define CB_FRAMER_PRIV_H

#include <stdint.h>
#include <string.h>
#include "cb_framer.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the framer reads octets as words on a little-endian machine"
#endif

#define FR_E1_TS 32                 /* octets per E1 frame */
#define FR_T1_BITS 193              /* bits per T1 frame */
#define FR_FRAMES 8                 /* frames per tick */
#define FR_WIN 520                  /* receive window: previous tick, this tick, padding */
#define FR_CLEAR_MS 10              /* a defect this long absent is gone */
#define FR_LMFA_MS 400              /* no CRC-4 multiframe this long: LMFA */
#define FR_MF_WINDOW_MS 8           /* two MF patterns within this */
#define FR_FALSE_BLOCKS 1000        /* CRC-4 blocks per false-alignment window */
#define FR_FALSE_ERRORS 915         /* errored blocks in it that mean false alignment */

/* The x86-64-v3 (AVX2) variants of the hot loops, chosen at run time (cb_framer_t.v3). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FR_V3 1
#else
#define FR_V3 0
#endif

enum fr_defect { FR_D_RED = 0, FR_D_BLUE = 1, FR_D_YELLOW = 2, FR_D_N = 3 };

/* The repeat shortcut (E1 but CAS): an idle span's ticks repeat over the CRC-4 multiframe (two
 * ticks), so each half keeps the last tick it framed or received whose timeslots were all uniform
 * (8 equal octets: idle channels, HDLC flags) with what that tick's output and state change were;
 * a tick with the same input and state is answered from it. */
typedef struct {
    int valid;
    int rai;                        /* sending_rai */
    int crc_in, crc_out;            /* tx_crc before and after */
    int idle;                       /* every timeslot was the idle octet */
    uint64_t ts[FR_E1_TS - 1];      /* timeslots 1..31 (8 frames each) */
    uint8_t line[CB_FRAMER_E1_OCTETS];
} fr_tx_memo_t;

typedef struct {
    int valid;
    int off;                        /* the frame's offset (on an octet) */
    int crc_in, crc_out;            /* crc_prev before and after */
    int rai_rx;
    int es_level;
    uint8_t blk_in[FR_E1_TS], blk_out[FR_E1_TS];   /* the elastic store's frame before and after */
    uint8_t prev[CB_FRAMER_E1_OCTETS];   /* the previous tick's line (from the offset's octet on) */
    uint8_t line[CB_FRAMER_E1_OCTETS];
    uint64_t ts[FR_E1_TS - 1];      /* timeslots delivered */
} fr_rx_memo_t;

struct cb_framer {
    /* configuration */
    int kind;                       /* CB_SPAN_E1 / CB_SPAN_T1 */
    int framing;                    /* enum cb_framing */
    int crc4;                       /* E1 with CRC-4 */
    int esf;                        /* T1 ESF */
    int cas;                        /* E1 TS16 CAS */
    int octets;                     /* line octets per tick */
    int nts;                        /* timeslots per frame, timeslot side */
    uint8_t idle;
    int force;                      /* enum cb_framer_force */
    int v3;                         /* the CPU runs x86-64-v3: its variants of the hot loops */

    /* what a steady tick reads and writes, together (a few cache lines) */
    /* transmit */
    int tx_fn;                      /* frame number (in its multiframe) of the tick's first frame */
    int tx_crc;                     /* CRC of the previous sub-multiframe / ESF (E1: 4 bits, T1: 6) */
    int tx_crc_run;                 /* T1 ESF: CRC-6 of the ESF so far */
    int tx_fdl;                     /* T1 ESF: FDL bits sent, mod 16 (the RAI pattern) */
    int ebit_pending;               /* E-bits to send as 0 (our received CRC-4 errors) */
    int sending_rai;
    /* receive: alignment */
    int aligned;                    /* frame aligned */
    int ever_aligned;               /* counters count from the first alignment on */
    int off;                        /* bit offset in win of the block's first frame */
    int fn0;                        /* its frame number in the multiframe (E1 CRC-4 MF / T1 SF) */
    int search_from;                /* E1: first bit position in win still to search */
    int fas_bad;                    /* E1: consecutive errored FAS words */
    int ferr;                       /* T1: errored framing bits, newest in bit 0 (last 4) */
    int deliver;                    /* 0: the block found this tick is not complete (deliver next tick) */
    /* E1 CRC-4 */
    int mf;                         /* multiframe aligned */
    int crc_prev;                   /* CRC of the previous sub-multiframe, -1 unknown */
    int si_hist;                    /* last 6 NFAS Si bits (MF search) */
    int64_t nfas;                   /* NFAS frames seen since alignment (MF search) */
    int64_t mf_last;                /* nfas at the last MF pattern, -1 none */
    int lmfa_ms;                    /* ticks without CRC-4 multiframe */
    int fa_blocks, fa_errors;       /* false-alignment window */
    /* elastic store */
    int64_t ppb;
    int64_t slip_acc;
    int es_level;                   /* 1: one frame in the store, 0: none */
    /* alarms (rai_rx and ais_now apart from each other and from alarms: a tick stores one and
       then tests them all, which read as one word would wait for the store) */
    int rai_rx;                     /* RAI seen in every frame of this tick */
    int64_t now;                    /* rx ticks */
    int64_t since[FR_D_N];          /* start of the current run of a defect, -1 none */
    int64_t last[FR_D_N];           /* last tick with the defect */
    int64_t last_los, last_lof;
    int ais_now;                    /* AIS in this tick */
    int64_t recover_until;
    uint32_t alarms;
    int check_in;                   /* ticks to the next alarm check */
    /* the repeat shortcut, by half of the CRC-4 multiframe (one entry without CRC-4) */
    int repeat;                     /* on (cb_framer_set_repeat) */
    int tx_run, rx_run;             /* ticks in a row sent, received from memory (memos unchanged) */
    int win_lazy;                   /* 1: the last line is rxm[win_half].line, not yet copied to win */
    int win_half;
    /* seconds and counters */
    int sec_ticks;
    int sec_crc;
    int sec_defect;
    cb_span_counters_t cnt;

    /* the elastic store, the receive window, the idle and unwanted timeslots */
    uint8_t blk[9 * FR_E1_TS + 8];  /* elastic store: last frame of the previous block, then the block */
    uint8_t win[FR_WIN];            /* previous tick's line octets then (when copied) this tick's */
    uint8_t row_tmp[FR_E1_TS];      /* E1: a frame across two ticks' lines */
    /* a tick of idle timeslots (stride 8): transmit given none; where the timeslots go that a
       receive's caller does not want. Aligned as a caller's buffer is: the kernels move them in
       8-octet words. */
    _Alignas(16) uint8_t idle_ts[FR_E1_TS * FR_FRAMES];
    _Alignas(16) uint8_t sink_ts[FR_E1_TS * FR_FRAMES];

    /* the repeat shortcut's memos */
    fr_tx_memo_t txm[2];
    fr_rx_memo_t rxm[2];

    uint8_t cas_tx[32];             /* ABCD we send, by timeslot */
    /* E1 CAS */
    int cas_mf;                     /* CAS multiframe aligned */
    int cas_fn;                     /* CAS frame number of the next frame */
    int cas_bad;                    /* consecutive errored MFAS */
    int cas_prev_hi;                /* previous TS16 bits 1-4 */
    uint8_t cas_rx[32];             /* ABCD received, by timeslot */
    uint32_t cas_changed;
    /* T1 search: per bit position in the frame, the F bits seen there (newest in bit 0) */
    uint64_t t1_hist[FR_T1_BITS];
    uint32_t t1_hist4[FR_T1_BITS][4];   /* ESF: the same, by frame number mod 4 */
    int t1_hist_n;                  /* ticks of history */
    int crc6_run;                   /* CRC-6 of the ESF so far */
    int crc6_prev;                  /* CRC-6 of the previous ESF, -1 unknown */
    int crc6_rx;                    /* C bits received in this ESF */
    int fdl;                        /* last 16 FDL bits */

    /* tables (built in cb_framer_new) */
    uint8_t crc4_fold[15][256];     /* CRC-4 contribution of a folded octet, by slot */
    uint8_t crc6_pos[8][256];       /* CRC-6 of octet q of a 63-bit folded value: a x^(8 q) mod g */
    uint8_t crc6_tick[64];          /* a CRC-6 remainder carried over a tick: r x^1544 mod g */
    uint64_t ts0_word[2][2];        /* E1 TS0 of a tick's 8 frames (octet j = frame j), by sub-multiframe
                                       and RAI sent: C bits 0, E-bits 1 (set in apply_config) */
    uint64_t c_word[16];            /* the C bits of a CRC-4 in that word (frames 0, 2, 4, 6) */
};

/* A run of ticks received from memory leaves the window's copy of the last line undone (it is the
 * memo's line): made before anything reads the window, or the memos change. */
static inline void fr_win_settle(struct cb_framer *f)
{
    if (f->win_lazy) {
        const int keep = f->off >> 3;
        memcpy(f->win + keep, f->rxm[f->win_half].line + keep, (size_t) (CB_FRAMER_E1_OCTETS - keep));
        f->win_lazy = 0;
    }
}

#endif
