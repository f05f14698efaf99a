/*
 * Promela model of one inter-kernel channel ring (Sources/InterKernel/Ring.swift).
 *
 * Spin explores every interleaving of sender, receiver and (optionally) a
 * scribbler at the granularity of single loads and stores. The model is
 * sequentially consistent; the Swift code gets the orderings the model relies
 * on from release/acquire pairs on each slot's header and on the sender's
 * cursor (see Ring.swift), and from seq_cst fences for the sleep protocol.
 *
 * Configurations (-D on the spin command line):
 *   N          slots in the ring                     (default 2)
 *   M          messages the sender sends             (default 4, so the ring wraps)
 *   SCRIBBLES  garbage lines a hostile writer adds   (default 0)
 *   SLEEP      1: the receiver sleeps when it finds nothing; the sender rings
 *              a doorbell when the wake flag is set  (default 0)
 *   MUTANT     1: the sender skips the "slot is free" check; 2: the receiver
 *              advances past untrusted lines. Each must make the check fail.
 *
 * Checked: every delivered message is the one sent with that number and
 * carries its own payload (no tear, no stale line, no garbage delivered);
 * numbers are delivered in increasing order (no duplicate, no reordering);
 * at the end every message is delivered or counted lost, with no loss
 * without scribbles and at most one per scribble; no deadlock (a receiver
 * waiting forever, e.g. a lost wake-up, is an invalid end state).
 */

#ifndef N
#define N 2
#endif
#ifndef M
#define M 4
#endif
#ifndef SCRIBBLES
#define SCRIBBLES 0
#endif
#ifndef SLEEP
#define SLEEP 0
#endif
#ifndef MUTANT
#define MUTANT 0
#endif

#define EMPTY 0
/* A header is 0 (empty), s+1 for an intact header of message s from the
   ring's sender, TORN for a header whose check byte fails, OTHER for an intact
   header naming another sender. */
#define TORN 200
#define OTHER 201
#define VALID(h) ((h) != EMPTY && (h) != TORN && (h) != OTHER)
#define SEQ(h) ((h) - 1)

byte hdr[N];
byte payload[N];
byte sendCursor = 0;     /* SenderState.nextSequence: published after each header */
byte expected = 0;       /* ReceiverState.nextSequence */
byte delivered = 0;
byte lost = 0;
byte dropped = 0;
byte scribbled = 0;
bool senderDone = false;
bool idle = false;       /* the receiver's wake line */
byte bell = 0;           /* doorbells rung and not yet taken */
byte lastDelivered = 255;

active proctype Sender() {
    byte s = 0;
    do
    :: s < M ->
#if MUTANT == 1
        skip;
#elif SLEEP
        /* wait for the slot; a full ring with the receiver asleep (only
           possible with garbage in it) rings the doorbell so it drains */
        do
        :: hdr[s % N] == EMPTY -> break
        :: hdr[s % N] != EMPTY && idle && bell == 0 -> bell++
        od;
#else
        (hdr[s % N] == EMPTY);            /* acquire load: the slot is free */
#endif
        payload[s % N] = s + 100;         /* plain payload stores */
        hdr[s % N] = s + 1;               /* release store of the header */
        sendCursor = s + 1;               /* release store of the cursor */
#if SLEEP
        /* seq_cst fence, then the wake flag (ringDoorbellIfIdle) */
        if
        :: idle -> bell++
        :: else -> skip
        fi;
#endif
        s++
    :: else -> break
    od;
    senderDone = true
}

active proctype Receiver() {
    byte h;
    byte p;
    byte resyncEnd = 0;   /* recovering while expected < resyncEnd */
    do
    :: expected >= M -> break
    :: expected < M ->
        h = hdr[expected % N];            /* acquire load of the header */
        if
        :: h == EMPTY ->
            if
            :: expected < resyncEnd && sendCursor > expected ->
                /* acquire of the cursor, then re-read: still empty = destroyed */
                if
                :: hdr[expected % N] == EMPTY -> lost++; expected++
                :: else -> skip
                fi
            :: else ->
#if SLEEP
                /* prepareToSleep: flag, seq_cst fence, look again */
                idle = true;
                if
                :: hdr[expected % N] != EMPTY || (expected < resyncEnd && sendCursor > expected) -> idle = false
                :: else ->
                    (bell > 0);           /* WFI until the doorbell */
                    bell--;
                    idle = false
                fi
#else
                /* poll: wait until there is something to look at */
                (hdr[expected % N] != EMPTY || (expected < resyncEnd && sendCursor > expected))
#endif
            fi
        :: VALID(h) && SEQ(h) == expected ->
            p = payload[expected % N];    /* plain payload load */
            assert(p == expected + 100);  /* the line is message `expected`, untorn */
            hdr[expected % N] = EMPTY;    /* release store: slot free again */
            assert(lastDelivered == 255 || expected > lastDelivered);
            lastDelivered = expected;
            delivered++;
            expected++
        :: VALID(h) && SEQ(h) == expected + N && sendCursor >= expected + N ->
            /* the sender (having sent `expected`) lapped an empty slot:
               `expected` was destroyed; leave the line for the next lap */
            lost++;
            expected++;
            if
            :: resyncEnd < sendCursor + 1 -> resyncEnd = sendCursor + 1
            :: else -> skip
            fi
        :: else ->
            /* untrusted line: clear it only if it is still what we read
               (compare-and-swap: the sender may have just overwritten a
               scribble it raced with), count, do not advance */
            atomic {
                if
                :: hdr[expected % N] == h ->
                    hdr[expected % N] = EMPTY;
                    dropped++;
#if MUTANT == 2
                    expected++;
#endif
                :: else -> skip
                fi
            };
            /* then the sender's cursor: the scribble can only have destroyed
               messages numbered up to it (the one being written included) */
            if
            :: resyncEnd < sendCursor + 1 -> resyncEnd = sendCursor + 1
            :: else -> skip
            fi
        fi
    od;
    assert(delivered + lost == M);
    assert(lost <= SCRIBBLES);
#if SCRIBBLES == 0
    assert(dropped == 0 && delivered == M)
#endif
}

#if SCRIBBLES > 0
/* A hostile or broken writer: up to SCRIBBLES times, at any moment, writes a
   torn header, a header naming another sender, or a replay of a message the
   receiver already took, into any slot. (A perfect forgery of the next
   message, payload included, is indistinguishable from it and not modelled.) */
active proctype Scribbler() {
    byte slot;
    byte s;
    do
    :: scribbled < SCRIBBLES && !senderDone ->
        select(slot : 0 .. N - 1);
        if
        :: hdr[slot] = TORN
        :: hdr[slot] = OTHER
        :: select(s : 0 .. M - 1);
           atomic { if :: s < expected && s % N == slot -> hdr[slot] = s + 1 :: else -> skip fi }
        fi;
        scribbled++
    :: else -> break
    od
}
#endif
