/*
 * iec101-slave-selftest: a minimal lib60870-C CS101 slave, only to prove the master harness
 * (tests/interop/iec101/selftest.sh) before ocpp809 serves IEC 101. Not used by the tests.
 *
 *   iec101-slave-selftest --device PATH [--mode unbalanced|balanced] [--link-address 1]
 *                         [--link-address-size 1] [--seconds 30]
 *
 * Sizes as in CONTRACT §2's [[iec101]] example: COT 1, CA 1 (CA 1), IOA 2.
 * Points: 1000 M_SP_TB_1 (1), 1001 M_ME_TF_1 (14.4 kW), 1002 M_IT_TB_1 (123456 Wh).
 * GI -> ACTCON, the three monitor points with COT 20 (class 1), ACTTERM.
 * CI -> ACTCON, 1002 with COT 37, ACTTERM.
 * C_SE_NC_1 / C_SE_TC_1 / C_SC_NA_1 -> positive ACTCON (+ ACTTERM on execute); a setpoint
 *   value <= 0 is confirmed negatively. An accepted execute updates 1001 and enqueues a
 *   spontaneous M_ME_TF_1 as class 2 data. Every other second 1001 changes slightly (class 2).
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hal_serial.h"
#include "hal_time.h"
#include "hal_thread.h"
#include "cs101_slave.h"

static CS101_Slave slave;
static CS101_AppLayerParameters alp;
static float power = 14.4f;

static void
now(struct sCP56Time2a* t)
{
    CP56Time2a_createFromMsTimestamp(t, Hal_getTimeInMs());
}

static void
add_online(CS101_ASDU asdu)
{
    struct sCP56Time2a t;
    now(&t);
    InformationObject io = (InformationObject) SinglePointWithCP56Time2a_create(
        NULL, 1000, true, IEC60870_QUALITY_GOOD, &t);
    CS101_ASDU_addInformationObject(asdu, io);
    InformationObject_destroy(io);
}

static void
send_power(IMasterConnection con, CS101_CauseOfTransmission cot, int ca, bool class2)
{
    struct sCP56Time2a t;
    now(&t);
    CS101_ASDU a = CS101_ASDU_create(alp, false, cot, 0, ca, false, false);
    InformationObject io = (InformationObject) MeasuredValueShortWithCP56Time2a_create(
        NULL, 1001, power, IEC60870_QUALITY_GOOD, &t);
    CS101_ASDU_addInformationObject(a, io);
    InformationObject_destroy(io);
    if (class2)
        CS101_Slave_enqueueUserDataClass2(slave, a);
    else
        IMasterConnection_sendASDU(con, a);
    CS101_ASDU_destroy(a);
}

static void
send_counter(IMasterConnection con, CS101_CauseOfTransmission cot, int ca)
{
    struct sCP56Time2a t;
    now(&t);
    struct sBinaryCounterReading bcr;
    BinaryCounterReading_create(&bcr, 123456, 1, false, false, false);
    CS101_ASDU a = CS101_ASDU_create(alp, false, cot, 0, ca, false, false);
    InformationObject io =
        (InformationObject) IntegratedTotalsWithCP56Time2a_create(NULL, 1002, &bcr, &t);
    CS101_ASDU_addInformationObject(a, io);
    InformationObject_destroy(io);
    IMasterConnection_sendASDU(con, a);
    CS101_ASDU_destroy(a);
}

static bool
on_gi(void* p, IMasterConnection con, CS101_ASDU asdu, uint8_t qoi)
{
    (void) p;
    if (qoi != IEC60870_QOI_STATION) {
        IMasterConnection_sendACT_CON(con, asdu, true);
        return true;
    }
    int ca = CS101_ASDU_getCA(asdu);
    IMasterConnection_sendACT_CON(con, asdu, false);
    CS101_ASDU a = CS101_ASDU_create(alp, false, CS101_COT_INTERROGATED_BY_STATION, 0, ca, false,
                                     false);
    add_online(a);
    IMasterConnection_sendASDU(con, a);
    CS101_ASDU_destroy(a);
    send_power(con, CS101_COT_INTERROGATED_BY_STATION, ca, false);
    IMasterConnection_sendACT_TERM(con, asdu);
    return true;
}

static bool
on_ci(void* p, IMasterConnection con, CS101_ASDU asdu, QualifierOfCIC qcc)
{
    (void) p;
    (void) qcc;
    IMasterConnection_sendACT_CON(con, asdu, false);
    send_counter(con, CS101_COT_REQUESTED_BY_GENERAL_COUNTER, CS101_ASDU_getCA(asdu));
    IMasterConnection_sendACT_TERM(con, asdu);
    return true;
}

static bool
on_clock(void* p, IMasterConnection con, CS101_ASDU asdu, CP56Time2a t)
{
    (void) p;
    (void) t;
    (void) con;
    (void) asdu;
    return true; /* lib60870 sends the positive ACTCON itself */
}

static bool
on_asdu(void* p, IMasterConnection con, CS101_ASDU asdu)
{
    (void) p;
    int type = CS101_ASDU_getTypeID(asdu);
    if (CS101_ASDU_getCOT(asdu) != CS101_COT_ACTIVATION)
        return false;
    InformationObject io = CS101_ASDU_getElement(asdu, 0);
    if (!io)
        return false;
    bool handled = true, select = false, ok = true;
    float v = 0;
    if (type == C_SE_NC_1 || type == C_SE_TC_1) {
        v = SetpointCommandShort_getValue((SetpointCommandShort) io);
        select = SetpointCommandShort_isSelect((SetpointCommandShort) io);
        ok = v > 0;
    }
    else if (type == C_SC_NA_1) {
        select = SingleCommand_isSelect((SingleCommand) io);
    }
    else {
        handled = false;
    }
    InformationObject_destroy(io);
    if (!handled)
        return false;
    IMasterConnection_sendACT_CON(con, asdu, !ok);
    if (ok && !select) {
        IMasterConnection_sendACT_TERM(con, asdu);
        if (type != C_SC_NA_1) {
            power = v;
            send_power(con, CS101_COT_SPONTANEOUS, CS101_ASDU_getCA(asdu), true);
        }
    }
    return true;
}

static void
on_link(void* p, int address, LinkLayerState st)
{
    (void) p;
    fprintf(stderr, "slave: link %d state %d\n", address, (int) st);
}

int
main(int argc, char** argv)
{
    const char* device = NULL;
    bool balanced = false;
    int la = 1, las = 1, seconds = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else if (!strcmp(argv[i], "--mode")) balanced = !strcmp(argv[i + 1], "balanced");
        else if (!strcmp(argv[i], "--link-address")) la = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--link-address-size")) las = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atoi(argv[i + 1]);
    }
    if (!device) {
        fprintf(stderr, "usage: %s --device PATH [--mode balanced]\n", argv[0]);
        return 2;
    }
    SerialPort port = SerialPort_create(device, 9600, 8, 'E', 1);
    if (!SerialPort_open(port)) {
        fprintf(stderr, "slave: cannot open %s\n", device);
        return 1;
    }
    struct sLinkLayerParameters ll = {.addressLength = las, .timeoutForAck = 500,
                                      .timeoutRepeat = 2000, .useSingleCharACK = true,
                                      .timeoutLinkState = 1000};
    struct sCS101_AppLayerParameters al = {.sizeOfTypeId = 1, .sizeOfVSQ = 1, .sizeOfCOT = 1,
                                           .originatorAddress = 0, .sizeOfCA = 1,
                                           .sizeOfIOA = 2, .maxSizeOfASDU = 249};
    slave = CS101_Slave_create(port, &ll, &al,
                               balanced ? IEC60870_LINK_LAYER_BALANCED
                                        : IEC60870_LINK_LAYER_UNBALANCED);
    alp = CS101_Slave_getAppLayerParameters(slave);
    CS101_Slave_setLinkLayerAddress(slave, la);
    /* balanced: the master's own address (iec101-master --own-address, default 0) */
    CS101_Slave_setLinkLayerAddressOtherStation(slave, 0);
    CS101_Slave_setInterrogationHandler(slave, on_gi, NULL);
    CS101_Slave_setCounterInterrogationHandler(slave, on_ci, NULL);
    CS101_Slave_setClockSyncHandler(slave, on_clock, NULL);
    CS101_Slave_setASDUHandler(slave, on_asdu, NULL);
    CS101_Slave_setLinkLayerStateChanged(slave, on_link, NULL);

    uint64_t end = Hal_getMonotonicTimeInMs() + (uint64_t) seconds * 1000;
    uint64_t next_change = Hal_getMonotonicTimeInMs() + 2000;
    while (Hal_getMonotonicTimeInMs() < end) {
        CS101_Slave_run(slave);
        if (Hal_getMonotonicTimeInMs() >= next_change) {
            next_change += 2000;
            power += 0.1f;
            send_power(NULL, CS101_COT_SPONTANEOUS, 1, true);
        }
        Thread_sleep(1);
    }
    CS101_Slave_destroy(slave);
    SerialPort_close(port);
    SerialPort_destroy(port);
    return 0;
}
