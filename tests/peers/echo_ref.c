/* The spandsp line echo canceller as a reference: a test and benchmark peer, run as a subprocess
 * (never part of the product). Built by `make setup` twice from this one file:
 *
 *   build/peers/echo_ref          "printing disabled": the printf family the library's per-sample
 *                                 debug calls bind to is defined here as no-ops and exported from the
 *                                 executable (-rdynamic), so the dynamic linker binds libspandsp's
 *                                 imports to them. Debian's build calls the fortified __printf_chk;
 *                                 printf, vprintf, fprintf, vfprintf and the other _chk forms are
 *                                 silenced too, whichever a build imports.
 *   build/peers/echo_ref_shipped  "as shipped": the library's printing left alone (the caller sends
 *                                 this program's stdout to /dev/null).
 *
 * Usage: echo_ref RIN SIN SOUT NCHAN TAPS MODE [CHUNK]
 *   RIN, SIN  raw native-endian int16, channel-major: channel c's n samples at [c * n, (c + 1) * n),
 *             n = file size / 2 / NCHAN; RIN is what was sent to the line (echo_can_update's tx), SIN
 *             what the line delivered (its rx);
 *   SOUT      where the cleaned SIN goes, same layout ("-" writes nothing);
 *   TAPS      echo_can_init's length; MODE its adaption mode (ADAPTION 1, NLP 2, CNG 4, ...);
 *   CHUNK     samples per channel per step (default n: each channel's whole signal in turn; 8 steps
 *             through the channels a tick at a time, as a media tier would).
 * Prints one JSON line on stderr: {"cpu_s": ..., "channels": ..., "samples": ..., "taps": ...,
 * "mode": ..., "chunk": ..., "silenced": ...}; cpu_s is this thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID) over the echo_can_update() loop alone (initialisation, file I/O and
 * freeing are outside it). Exit status 0, or 2 on bad arguments or I/O.
 *
 * This program itself never calls the printf family (in the silenced build it does nothing): its
 * output goes through snprintf and fputs. */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spandsp.h>

#if defined(ECHO_REF_SILENT)
/* Interposed over glibc's: unversioned definitions in the executable satisfy the library's versioned
 * references (the executable comes first in the lookup scope). The fortified forms take a flag first. */
#undef printf
#undef fprintf
#undef vprintf
#undef vfprintf
int printf(const char *fmt, ...);
int fprintf(FILE *f, const char *fmt, ...);
int vprintf(const char *fmt, va_list ap);
int vfprintf(FILE *f, const char *fmt, va_list ap);
int __printf_chk(int flag, const char *fmt, ...);
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...);
int __vprintf_chk(int flag, const char *fmt, va_list ap);
int __vfprintf_chk(FILE *f, int flag, const char *fmt, va_list ap);

int printf(const char *fmt, ...) { (void)fmt; return 0; }
int fprintf(FILE *f, const char *fmt, ...) { (void)f; (void)fmt; return 0; }
int vprintf(const char *fmt, va_list ap) { (void)fmt; (void)ap; return 0; }
int vfprintf(FILE *f, const char *fmt, va_list ap) { (void)f; (void)fmt; (void)ap; return 0; }
int __printf_chk(int flag, const char *fmt, ...) { (void)flag; (void)fmt; return 0; }
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...) { (void)f; (void)flag; (void)fmt; return 0; }
int __vprintf_chk(int flag, const char *fmt, va_list ap) { (void)flag; (void)fmt; (void)ap; return 0; }
int __vfprintf_chk(FILE *f, int flag, const char *fmt, va_list ap)
{
    (void)f; (void)flag; (void)fmt; (void)ap;
    return 0;
}
#define SILENCED "true"
#else
#define SILENCED "false"
#endif

static void fail(const char *what, const char *detail)
{
    fputs("echo_ref: ", stderr);
    fputs(what, stderr);
    if (detail) {
        fputs(": ", stderr);
        fputs(detail, stderr);
    }
    fputs("\n", stderr);
    exit(2);
}

static int16_t *read_all(const char *path, long *nbytes)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail("cannot open", path);
    if (fseek(f, 0, SEEK_END) != 0)
        fail("cannot seek", path);
    long size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0)
        fail("cannot size", path);
    int16_t *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf)
        fail("out of memory", path);
    if (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size)
        fail("short read", path);
    fclose(f);
    *nbytes = size;
    return buf;
}

static long parse_int(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 0);
    if (*s == '\0' || *end != '\0')
        fail("not a number", what);
    return v;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 7 || argc > 8)
        fail("usage", "echo_ref RIN SIN SOUT NCHAN TAPS MODE [CHUNK]");
    long nchan = parse_int(argv[4], "NCHAN");
    long taps = parse_int(argv[5], "TAPS");
    long mode = parse_int(argv[6], "MODE");
    if (nchan < 1 || taps < 1 || mode < 0)
        fail("out of range", "NCHAN and TAPS must be >= 1, MODE >= 0");
    long rin_bytes, sin_bytes;
    int16_t *rin = read_all(argv[1], &rin_bytes);
    int16_t *sin = read_all(argv[2], &sin_bytes);
    if (rin_bytes != sin_bytes || rin_bytes % (2 * nchan) != 0)
        fail("RIN and SIN must be the same size, a whole number of samples per channel", NULL);
    long n = rin_bytes / 2 / nchan;
    long chunk = argc == 8 ? parse_int(argv[7], "CHUNK") : n;
    if (chunk < 1)
        fail("out of range", "CHUNK must be >= 1");
    int16_t *sout = malloc((size_t)(nchan * n) * sizeof(int16_t) + 1);
    echo_can_state_t **ec = calloc((size_t)nchan, sizeof(*ec));
    if (!sout || !ec)
        fail("out of memory", NULL);
    for (long c = 0; c < nchan; c++) {
        ec[c] = echo_can_init((int)taps, (int)mode);
        if (!ec[c])
            fail("echo_can_init failed", NULL);
    }

    double t0 = cpu_now();
    for (long start = 0; start < n; start += chunk) {
        long end = start + chunk < n ? start + chunk : n;
        for (long c = 0; c < nchan; c++) {
            echo_can_state_t *s = ec[c];
            const int16_t *tx = rin + c * n;
            const int16_t *rx = sin + c * n;
            int16_t *out = sout + c * n;
            for (long i = start; i < end; i++)
                out[i] = echo_can_update(s, tx[i], rx[i]);
        }
    }
    double cpu = cpu_now() - t0;

    for (long c = 0; c < nchan; c++)
        echo_can_free(ec[c]);
    if (strcmp(argv[3], "-") != 0) {
        FILE *f = fopen(argv[3], "wb");
        if (!f)
            fail("cannot open", argv[3]);
        if (fwrite(sout, sizeof(int16_t), (size_t)(nchan * n), f) != (size_t)(nchan * n) || fclose(f) != 0)
            fail("short write", argv[3]);
    }
    fflush(stdout);
    char line[256];
    snprintf(line, sizeof line,
             "{\"cpu_s\": %.6f, \"channels\": %ld, \"samples\": %ld, \"taps\": %ld, \"mode\": %ld, "
             "\"chunk\": %ld, \"silenced\": " SILENCED "}\n",
             cpu, nchan, n, taps, mode, chunk);
    fputs(line, stderr);
    free(ec);
    free(sout);
    free(sin);
    free(rin);
    return 0;
}
