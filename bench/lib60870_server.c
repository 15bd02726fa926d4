/*
 * Reference IEC 60870-5-104 controlled station for bench/compare.sh: a lib60870-C
 * CS104_Slave (the library inside c104 2.2.1) serving N monitored points and producing
 * spontaneous ASDUs as fast as its queue drains — the counterpart of
 * examples/iec104_source.rs.
 *
 *   lib60870_server --port PORT [--points N] [--kind single|float] [--k K] [--w W]
 *                   [--queue N] [--high-water N] [--seconds S]
 *
 * --kind float: short floats with time tag (M_ME_TF_1), as many objects per ASDU as fit
 *   (16 with the default 249-octet ASDU), points changed round-robin.
 * --kind single: single points with time tag (M_SP_TB_1), one object per ASDU, value
 *   alternating every round (events, as in iec104_source).
 *
 * Flow control: CS104_Slave_enqueueASDU has no backpressure (a full queue overwrites its
 * oldest entries), so the producer only enqueues while CS104_Slave_getNumberOfQueueEntries
 * (entries waiting or sent but not yet confirmed) is below --high-water (default half the
 * queue) and otherwise backs off 100 us — the same rule and back-off as iec104_source.
 * Enqueues made at or above queue size - 1 entries (where an overwrite is possible) are
 * counted as "enqueued_near_full" and must be 0.
 *
 * The producer starts when a master has activated data transfer (STARTDT). Runs until
 * SIGINT/SIGTERM or --seconds, then prints one JSON line on stdout. Single redundancy
 * group, loopback only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cs104_slave.h"
#include "hal_time.h"

static volatile sig_atomic_t stop_requested = 0;
static atomic_int active_connections = 0;
static atomic_int ever_activated = 0;
static atomic_llong queued_at_close = -1;
static atomic_llong enqueued_at_close = -1;
static atomic_llong enqueued_total = 0;
static CS104_Slave slave_global = NULL;

static void on_signal(int sig)
{
    (void) sig;
    stop_requested = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: lib60870_server --port PORT [--points N] [--kind single|float] [--k K] "
            "[--w W] [--queue N] [--high-water N] [--seconds S]\n");
}

static long parse_long(const char *flag, const char *value, long min, long max)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "lib60870_server: bad value for %s: %s\n", flag, value);
        exit(2);
    }
    return v;
}

static void connection_event(void *parameter, IMasterConnection con, CS104_PeerConnectionEvent event)
{
    (void) parameter;
    (void) con;
    switch (event) {
    case CS104_CON_EVENT_ACTIVATED:
        atomic_fetch_add(&active_connections, 1);
        atomic_store(&ever_activated, 1);
        break;
    case CS104_CON_EVENT_DEACTIVATED:
        atomic_fetch_sub(&active_connections, 1);
        break;
    case CS104_CON_EVENT_CONNECTION_CLOSED:
        if (atomic_load(&ever_activated) && slave_global != NULL) {
            atomic_store(&enqueued_at_close, atomic_load(&enqueued_total));
            atomic_store(&queued_at_close,
                         (long long) CS104_Slave_getNumberOfQueueEntries(slave_global, NULL));
        }
        break;
    default:
        break;
    }
}

static bool accept_any(void *parameter, const char *ip)
{
    (void) parameter;
    (void) ip;
    return true;
}

/* Interrogation is not part of the benchmark: confirm and terminate it empty. */
static bool interrogation(void *parameter, IMasterConnection connection, CS101_ASDU asdu, uint8_t qoi)
{
    (void) parameter;
    (void) qoi;
    IMasterConnection_sendACT_CON(connection, asdu, false);
    IMasterConnection_sendACT_TERM(connection, asdu);
    return true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long port = -1, points = 1000, k = 12, w = 8, queue = 2000, high_water = -1, seconds = 0;
    bool floats = true;

    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            usage();
            return 0;
        }
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char *value = argv[++i];
        if (strcmp(flag, "--port") == 0)
            port = parse_long(flag, value, 1, 65535);
        else if (strcmp(flag, "--points") == 0)
            points = parse_long(flag, value, 1, 16000000);
        else if (strcmp(flag, "--k") == 0)
            k = parse_long(flag, value, 1, 32767);
        else if (strcmp(flag, "--w") == 0)
            w = parse_long(flag, value, 1, 32767);
        else if (strcmp(flag, "--queue") == 0)
            queue = parse_long(flag, value, 2, 10000000);
        else if (strcmp(flag, "--high-water") == 0)
            high_water = parse_long(flag, value, 1, 10000000);
        else if (strcmp(flag, "--seconds") == 0)
            seconds = parse_long(flag, value, 0, 86400);
        else if (strcmp(flag, "--kind") == 0) {
            if (strcmp(value, "float") == 0)
                floats = true;
            else if (strcmp(value, "single") == 0)
                floats = false;
            else {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (port < 0) {
        usage();
        return 2;
    }
    if (high_water < 0)
        high_water = queue / 2;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    CS104_Slave slave = CS104_Slave_create((int) queue, 100);
    if (slave == NULL) {
        fprintf(stderr, "lib60870_server: CS104_Slave_create failed\n");
        return 1;
    }
    slave_global = slave;
    CS104_Slave_setLocalAddress(slave, "127.0.0.1");
    CS104_Slave_setLocalPort(slave, (int) port);
    CS104_Slave_setServerMode(slave, CS104_MODE_SINGLE_REDUNDANCY_GROUP);
    CS104_Slave_setMaxOpenConnections(slave, 4);
    CS104_APCIParameters apci = CS104_Slave_getConnectionParameters(slave);
    apci->k = (int) k;
    apci->w = (int) w;
    CS104_Slave_setConnectionRequestHandler(slave, accept_any, NULL);
    CS104_Slave_setConnectionEventHandler(slave, connection_event, NULL);
    CS104_Slave_setInterrogationHandler(slave, interrogation, NULL);
    CS101_AppLayerParameters alp = CS104_Slave_getAppLayerParameters(slave);

    CS104_Slave_start(slave);
    if (!CS104_Slave_isRunning(slave)) {
        fprintf(stderr, "lib60870_server: could not listen on 127.0.0.1:%ld\n", port);
        CS104_Slave_destroy(slave);
        return 1;
    }
    fprintf(stderr,
            "lib60870_server: listening on 127.0.0.1:%ld (%ld %s points, k=%ld w=%ld, queue %ld, "
            "high water %ld)\n",
            port, points, floats ? "float" : "single", k, w, queue, high_water);

    double t0 = now_s();
    long long updates = 0, asdus = 0, throttled = 0, near_full = 0;
    uint64_t round = 0;
    long ioa = 0;
    /* One object of each type, allocated once and re-initialised in place by *_create. */
    struct sCP56Time2a time0;
    CP56Time2a_createFromMsTimestamp(&time0, Hal_getTimeInMs());
    MeasuredValueShortWithCP56Time2a fobj =
        MeasuredValueShortWithCP56Time2a_create(NULL, 1, 0.0f, IEC60870_QUALITY_GOOD, &time0);
    SinglePointWithCP56Time2a sobj =
        SinglePointWithCP56Time2a_create(NULL, 1, false, IEC60870_QUALITY_GOOD, &time0);
    if (fobj == NULL || sobj == NULL) {
        fprintf(stderr, "lib60870_server: out of memory\n");
        return 1;
    }

    while (!stop_requested) {
        if (seconds > 0 && now_s() - t0 >= (double) seconds)
            break;
        if (atomic_load(&active_connections) == 0) {
            struct timespec ts = {0, 1000000}; /* no master active: poll every 1 ms */
            nanosleep(&ts, NULL);
            continue;
        }
        int entries = CS104_Slave_getNumberOfQueueEntries(slave, NULL);
        if (entries >= high_water) {
            throttled++;
            struct timespec ts = {0, 100000}; /* queue at the high-water mark: 100 us */
            nanosleep(&ts, NULL);
            continue;
        }
        if (entries >= queue - 1)
            near_full++;

        struct sCP56Time2a time;
        CP56Time2a_createFromMsTimestamp(&time, Hal_getTimeInMs());
        CS101_ASDU asdu = CS101_ASDU_create(alp, false, CS101_COT_SPONTANEOUS, 0, 1, false, false);
        int in_asdu = 0;
        for (;;) {
            long next = ioa % points + 1;
            uint64_t next_round = round + (next == 1 ? 1 : 0);
            InformationObject io;
            if (floats) {
                float value = (float) (next_round * (uint64_t) points + (uint64_t) next);
                io = (InformationObject) MeasuredValueShortWithCP56Time2a_create(
                    fobj, (int) next, value, IEC60870_QUALITY_GOOD, &time);
            } else {
                io = (InformationObject) SinglePointWithCP56Time2a_create(
                    sobj, (int) next, next_round % 2 == 1, IEC60870_QUALITY_GOOD, &time);
            }
            if (!CS101_ASDU_addInformationObject(asdu, io))
                break; /* ASDU full: this update goes into the next one */
            ioa = next;
            round = next_round;
            in_asdu++;
            if (!floats)
                break; /* events: one object per ASDU */
        }
        CS104_Slave_enqueueASDU(slave, asdu);
        CS101_ASDU_destroy(asdu);
        atomic_fetch_add(&enqueued_total, 1);
        asdus++;
        updates += in_asdu;
    }

    double elapsed = now_s() - t0;
    InformationObject_destroy((InformationObject) fobj);
    InformationObject_destroy((InformationObject) sobj);
    int queued = CS104_Slave_getNumberOfQueueEntries(slave, NULL);
    CS104_Slave_stop(slave);
    CS104_Slave_destroy(slave);
    printf("{\"server\":\"lib60870-C\",\"kind\":\"%s\",\"points\":%ld,\"updates\":%lld,"
           "\"asdus_enqueued\":%lld,\"objects_per_asdu\":%.2f,\"throttled\":%lld,"
           "\"enqueued_near_full\":%lld,\"queued_at_end\":%d,\"enqueued_at_close\":%lld,"
           "\"queued_at_close\":%lld,\"queue\":%ld,\"high_water\":%ld,\"seconds\":%.3f}\n",
           floats ? "float" : "single", points, updates, asdus,
           asdus > 0 ? (double) updates / (double) asdus : 0.0, throttled, near_full, queued,
           (long long) atomic_load(&enqueued_at_close), (long long) atomic_load(&queued_at_close),
           queue, high_water, elapsed);
    return 0;
}
