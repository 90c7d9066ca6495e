/*
 * cb_framer.h - the E1/T1 framer chip of the sim card: one per span, and one
 * per far end the card plays in process.
 *
 * What does it do?
 *   Transmit: one tick (1 ms = 8 frames) of timeslot octets becomes one tick
 *   of line octets: E1 256 (8 frames x 32 timeslots, TS0 first), T1 193 (8
 *   frames x 193 bits: F bit then 24 octets, packed continuously). The first
 *   line bit is the MSB of the first octet; a timeslot octet's MSB is its
 *   first bit on the line (G.704 bit 1). Timeslot octets are channel-major
 *   with a stride: timeslot t (1-based) frame f (0..7) at ts[(t - 1) * stride + f].
 *   Receive: line octets back to timeslot octets, with frame alignment
 *   (G.706), alarms (DAHDI's timings), counters and a 2-frame elastic store.
 *   The D-channel timeslot is a timeslot like the others here: the caller
 *   puts its HDLC bit stream in and takes it out; the framer never looks at it.
 *
 * E1 (G.704 2.3): TS0 alternates FAS (Si 0011011) and NFAS (Si 1 A Sa4..Sa8,
 *   Sa bits sent as 1, A = the RAI we send). With CRC-4 the Si bits carry
 *   the C bits (FAS frames), the multiframe pattern 001011 (NFAS frames
 *   1..11) and the E-bits (frames 13, 15: 0 for each CRC-4 error we
 *   received); without it they are 1. With TS16 in CAS the framer writes
 *   TS16 itself: frame 0 of the 16-frame CAS multiframe 0000 1 Y 1 1 (Y = 1
 *   while our CAS receiver has no multiframe), frame n (1..15) the ABCD bits
 *   of timeslots n (bits 1-4) and n + 16 (bits 5-8) from its own table.
 * T1: D4 (Ft 101010 in odd frames, Fs 001110 in even ones, RAI = bit 2 of
 *   every channel 0) or ESF (FPS 001011 in frames 4, 8..24, CRC-6 of the
 *   previous ESF with its F bits as 1 in frames 2, 6..22, FDL in odd frames:
 *   all 1s, or 1111111100000000 repeated while we send RAI). No T1 CAS.
 *
 * Receive alignment (G.706):
 *   E1: search for FAS at any bit position; found on FAS, NFAS bit 2 = 1, FAS
 *   in the next two frames; lost after 3 consecutive errored FAS words (the
 *   search then resumes after the last of them). CRC-4 multiframe: two MF
 *   patterns a multiple of 2 ms apart within 8 ms; without one for 400 ms the
 *   basic frame is kept (traffic flows) and LMFA shows (the search goes on).
 *   915 or more errored CRC-4 blocks of 1000 = false alignment: reframe.
 *   Aligned to the CRC-4 multiframe, the receiver moves its frame window
 *   once so that a tick is one sub-multiframe (a few frames dropped or
 *   repeated then, as at any reframe).
 *   T1: a bit position whose F bits follow the D4 pattern for 4 superframes
 *   (48 frames) or the FPS for 4 ESFs (96 frames); lost when 2 of 4
 *   consecutive framing bits (D4: every F bit, ESF: the FPS bits) are in
 *   error. ESF checks the CRC-6.
 *   Not aligned, the receiver delivers the idle octet on every timeslot.
 *
 * Defects, per tick: LOS (a tick given with nosig), LOF (not frame-aligned),
 *   AIS (fewer than 3 zeros in each 512-bit part of the tick, G.775; AIS is
 *   not LOF for alarms), RAI received (E1: A bit set in every NFAS of the
 *   tick; D4: bit 2 of every channel 0 in the tick; ESF: the FDL pattern in
 *   every FDL bit of the tick), LMFA.
 * Alarms (DAHDI): checked every 100 ms while a state bit is set, else every
 *   50 ms (one cb_framer_rx call = 1 ms). A defect present continuously
 *   (gaps under 10 ms do not break it) declares RED (LOS, or LOF without AIS)
 *   or BLUE (AIS) after 2500 ms, YELLOW (RAI) after 500 ms; it clears at the
 *   first check after 10 ms without the defect. RED or BLUE clearing sets
 *   RECOVER for 5000 ms (expires on the tick). We send RAI while RED, BLUE or
 *   RECOVER is set (never for YELLOW alone), or while forced.
 *   Detail bits (checked with the state): LOS, LFA (within the last 10 ms),
 *   LMFA (CRC-4 configured, no multiframe for 400 ms or more).
 * Counters (cb_span_counters_t; bpv stays 0: the line decoder has it): none
 *   before the first frame alignment. crc (CRC-4/CRC-6 errors), ebit (E-bits
 *   received 0), fas (errored FAS words / T1 framing bits) while aligned;
 *   slips; es and ses per 1000 rx ticks: es with any CRC error or a
 *   LOS/LOF/AIS defect tick, ses with >= 805 CRC-4 / >= 320 CRC-6 errors or a
 *   defect tick.
 * Slips: cb_framer_set_offset_ppb models the far end's clock: every
 *   1 / (8000 * |ppm| * 1e-6) s the elastic store slips one whole frame of
 *   timeslot octets (framing and CRC untouched). The sim's line bits arrive
 *   at our rate, so the store swings between its two fill levels: slips drop
 *   and repeat a frame alternately, at the rate the offset gives.
 *
 * Threads: a framer is used by one thread at a time. cb_framer_tx and
 * cb_framer_rx (drivers/src/tick/) allocate nothing, take no lock and make
 * no system call.
 *
 * Between CDEF BEGIN and CDEF END this header is also the cffi cdef.
 */
#ifndef CB_FRAMER_H
#define CB_FRAMER_H

#include <stdint.h>
#include "cb_hal.h"

/* CDEF BEGIN */
#define CB_FRAMER_E1_OCTETS 256     /* line octets per tick, E1 */
#define CB_FRAMER_T1_OCTETS 193     /* line octets per tick, T1 */
#define CB_FRAMER_RED_MS 2500       /* LOS/LOF (red) and AIS (blue) persistence */
#define CB_FRAMER_YELLOW_MS 500     /* RAI received (yellow) persistence */
#define CB_FRAMER_RECOVER_MS 5000   /* RECOVER after red/blue clear */
#define CB_FRAMER_CAS_IDLE 13       /* ABCD sent on a CAS channel until set: 1101 */

/* cb_framer_force flags: faults the far side sends. */
enum cb_framer_force {
    CB_FRAMER_SEND_AIS = 1,     /* the line carries unframed all ones */
    CB_FRAMER_SEND_RAI = 2      /* send RAI whatever our alarms */
};

/* cb_framer_aligned bits. */
enum cb_framer_sync {
    CB_FRAMER_FRAME = 1,        /* basic frame (E1) / frame (T1) aligned */
    CB_FRAMER_MF = 2,           /* E1 CRC-4 multiframe aligned */
    CB_FRAMER_CAS_MF = 4        /* E1 TS16 CAS multiframe aligned */
};

typedef struct cb_framer cb_framer_t;

/*! \brief Make a framer.
    \param kind enum cb_span_kind (cb_sim.h): CB_SPAN_E1 0, CB_SPAN_T1 1.
    \param cfg framing (it must be of the kind), ts16 (CAS only on E1); coding and sync_priority
        are not the framer's.
    \param idle the octet delivered on every timeslot while the receiver is not aligned (the
        card's idle octet), 0..255.
    \return the framer, or NULL (bad arguments, out of memory). */
cb_framer_t *cb_framer_new(int kind, const cb_span_config_t *cfg, int idle);
/*! \brief Free a framer (NULL is fine). */
void cb_framer_free(cb_framer_t *f);
/*! \brief Reconfigure: framing and TS16 role. Restarts transmit multiframes and the receive
    search; counters, alarm state, CAS tables and forced faults are kept.
    \return CB_OK, or CB_ERR_INVALID (framing of the other kind, CAS on T1, unknown values). */
int cb_framer_config(cb_framer_t *f, const cb_span_config_t *cfg);
/*! \brief Line octets per tick: 256 (E1) or 193 (T1). */
int cb_framer_octets(const cb_framer_t *f);
/*! \brief Timeslots per frame on the timeslot side: 31 (E1) or 24 (T1). */
int cb_framer_timeslots(const cb_framer_t *f);

/*! \brief Transmit one tick.
    \param ts timeslot octets, timeslot t (1-based) frame f at ts[(t - 1) * stride + f]
        (E1 1..31, T1 1..24; E1 TS16 is ignored under CAS).
    \param stride >= 8.
    \param line cb_framer_octets() line octets out. */
void cb_framer_tx(cb_framer_t *f, const uint8_t *ts, int stride, uint8_t *line);
/*! \brief Receive one tick (1 ms: the alarm clock advances by one).
    \param line cb_framer_octets() line octets (ignored when nosig).
    \param nosig 1: no signal this tick (LOS; the receiver drops its alignment).
    \param ts timeslot octets out, same layout as cb_framer_tx's; the idle octet while not aligned.
    \param stride >= 8. */
void cb_framer_rx(cb_framer_t *f, const uint8_t *line, int nosig, uint8_t *ts, int stride);
/*! \brief cb_framer_tx where `line` is the buffer this framer wrote `back` ticks ago (0: unknown)
    and nobody changed since: a tick the repeat shortcut answers may then leave it as it is.
    `ts` NULL: every timeslot is the idle octet (the caller knows; nothing is read).
    \return 1 if `line` was left as it was (it holds this tick's line), 0 if it was written. */
int cb_framer_tx_kept(cb_framer_t *f, const uint8_t *ts, int stride, uint8_t *line, int back);
/*! \brief cb_framer_rx where `line` is the buffer this framer read `back` ticks ago, unchanged
    since (its sender left it as it was, cb_framer_tx_kept); 0: unknown. The outputs are
    cb_framer_rx's; the repeat shortcut then need not compare the line again. `ts` NULL: the
    caller wants no timeslot octets this tick (none are written). */
void cb_framer_rx_kept(cb_framer_t *f, const uint8_t *line, int nosig, uint8_t *ts, int stride, int back);
/*! \brief Up to `ticks` ticks of cb_framer_tx_kept at once, each with the same `back` (line buffers
    reused as there, every tick's line left as it was): as many as the repeat shortcut sends from
    memory, from the first on. Tick j's timeslots are at ts + j * step (stride as in cb_framer_tx;
    NULL: every timeslot idle). The state moves as those ticks would move it; no line is written.
    \return the ticks done (0..ticks): the caller frames the rest tick by tick. */
int cb_framer_tx_run(cb_framer_t *f, const uint8_t *ts, int stride, int step, int ticks, int back);
/*! \brief Up to `ticks` ticks of cb_framer_rx_kept at once, each given the line buffer it read `back`
    ticks before, unchanged (cb_framer_tx_run or cb_framer_tx_kept said so), with signal: as many as
    repeat the kept ticks and whose alarm ticks have nothing to do (none past the next alarm check,
    second's end or false-alignment window's end). Tick j's timeslots go to ts + j * step (NULL:
    none wanted). Outputs, counters and alarms are the ticks' one by one.
    \return the ticks done (0..ticks): the caller receives the rest tick by tick. */
int cb_framer_rx_run(cb_framer_t *f, int ticks, int back, uint8_t *ts, int stride, int step);

/*! \brief Alarm bits now: state (RECOVER, YELLOW, RED, BLUE) | detail (LOS, LFA, LMFA), enum
    cb_span_alarm. They change only at the alarm checks (RECOVER's end on its tick); the caller
    compares with what it last saw to raise CB_EV_ALARM. */
uint32_t cb_framer_alarms(const cb_framer_t *f);
/*! \brief 1 while we send RAI (RED, BLUE or RECOVER set, or forced). */
int cb_framer_sending_rai(const cb_framer_t *f);
/*! \brief The receiver's alignment, enum cb_framer_sync bits. */
int cb_framer_aligned(const cb_framer_t *f);
/*! \brief Fill alarms, sending_rai and counters (bpv 0); sync, has_dchan and dchan are zeroed
    (the card's). */
void cb_framer_status(const cb_framer_t *f, cb_span_status_t *out);
/*! \brief Faults we send: enum cb_framer_force bits (0: none). */
void cb_framer_force(cb_framer_t *f, int flags);
/*! \brief The repeat shortcut, on from cb_framer_new: an E1 framer (not under CAS) answers a tick
    from memory when it repeats the last tick of the same half of the CRC-4 multiframe whose
    timeslots were each 8 equal octets (idle channels, HDLC flags), with the same state; the
    outputs, counters and alarms are those of the full path. 0 turns it off (tests compare). */
void cb_framer_set_repeat(cb_framer_t *f, int on);
/*! \brief The far end's clock relative to ours, parts per billion (+: faster). 0: no slips. */
void cb_framer_set_offset_ppb(cb_framer_t *f, int64_t ppb);

/*! \brief The ABCD bits last received on a CAS timeslot (E1 under CAS; 1-15, 17-31).
    \return 0..15, or CB_ERR_INVALID (not a CAS bearer), CB_ERR_STATE (not under CAS). */
int cb_framer_cas_get(const cb_framer_t *f, int ts);
/*! \brief Set the ABCD bits we send on a CAS timeslot (1-15, 17-31); they go out from the next
    CAS multiframe. \return CB_OK, CB_ERR_INVALID (not a CAS bearer, bits beyond 4, or 0000:
    it would imitate the multiframe alignment signal), CB_ERR_STATE (not under CAS). */
int cb_framer_cas_set(cb_framer_t *f, int ts, int abcd);
/*! \brief CAS channels whose received ABCD changed since the last call (read and clear): bit c
    (1u << c) for CAS channel c = 1..30 (timeslot c for c <= 15, c + 1 above). */
uint32_t cb_framer_cas_changed(cb_framer_t *f);

/*! \brief Test support (not the per-tick path): run two framers back to back for `ticks` ticks,
    a's line into b's receiver and b's into a's. Per tick t and side x (NULL = none/idle):
    tx_x + t * n * 8: the n timeslots x sends (stride 8; NULL: the idle octet);
    rx_x + t * n * 8: what x received (stride 8);
    xor_xy + t * octets: XORed into the line from x to y (bit errors);
    cut_xy[t]: 1 = no signal from x to y this tick;
    shift_ab: when not NULL, shift_ab[t] = k (1..7) delays the line from a to b by k more bits
        from tick t on (k zeros enter; 16 bits of delay at most);
    alarms_x[t]: x's alarm bits after the tick, | 1u << 31 while x sends RAI.
    block > 0: the lines go through `block` buffers each way, tick t in buffer t % block, with
    what stayed unchanged told to the framers as the sim card tells them (cb_framer_tx_kept,
    cb_framer_rx_kept); a line a shift or an XOR changed is never called unchanged. 0: one buffer.
    A block whose lines nothing touches runs each framer a block at once where it can
    (cb_framer_tx_run, cb_framer_rx_run), as the sim card does.
    \return CB_OK, or CB_ERR_INVALID (kinds differ, ticks < 0, a shift out of range, block out of
    0..CB_MAX_BLOCK_TICKS), CB_ERR_NOMEM. */
int cb_framer_run_pair(cb_framer_t *a, cb_framer_t *b, int ticks, int block,
                       const uint8_t *tx_a, const uint8_t *tx_b, uint8_t *rx_a, uint8_t *rx_b,
                       const uint8_t *xor_ab, const uint8_t *xor_ba,
                       const uint8_t *cut_ab, const uint8_t *cut_ba,
                       const int8_t *shift_ab, uint32_t *alarms_a, uint32_t *alarms_b);
/*! \brief Benchmark support (not the per-tick path): `ticks` ticks of n framer pairs, each
    tx[i]'s line into rx[i]'s receiver (no impairment), the pairs interleaved tick by tick as a card
    steps its spans. Tick t of pair i sends block (t mod blocks) of ts_in (blocks x nts x 8
    timeslot octets, stride 8; the same for every pair) and receives into ts_out + i * nts * 8
    (stride 8; the last tick's octets stay there).
    \return CB_OK, or CB_ERR_INVALID (n < 1, ticks < 0, blocks < 1, a NULL or kinds differ). */
int cb_framer_bench(cb_framer_t *const *tx, cb_framer_t *const *rx, int n, int ticks,
                    const uint8_t *ts_in, int blocks, uint8_t *ts_out);
/* CDEF END */

#endif
