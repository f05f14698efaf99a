/*
 * The CLH big lock of Sources/BigLock/CLHLock.swift, for 3 cores, in spin.
 *
 * Checked (scripts/model-check-locks.sh):
 *   - mutual exclusion: at most one core in the critical section (assert);
 *   - no deadlock: every state has a move (spin's invalid-end-state check;
 *     the cores loop forever, so a state where none can move is a deadlock);
 *   - no livelock: with weak fairness, no cycle avoids the critical section
 *     (non-progress cycles, -DNP).
 * The model includes seL4's reason for the wait hook: a core holding the
 * lock may make a remote call to another core and wait for its answer; a
 * core waiting for the lock serves remote calls (the hook), and so does a
 * core outside the kernel. Build with -DNOHOOK to drop the hook: spin must
 * then find the deadlock. With -DSPLITSWAP the swap on `tail` becomes a load
 * and a store: spin must find two cores in the critical section.
 *
 * Promela is sequentially consistent: the memory orderings of the Swift code
 * are argued in its comments, not checked here.
 */
#define N 3
#define PENDING 1
#define GRANTED 0

byte slot[N + 1];          /* request slots; slot N is the initial dummy */
byte tail = N;             /* the last slot enqueued */
byte inCS = 0;             /* cores in the critical section */
bool request[N];           /* a remote call is pending for core i */
bool answered[N];          /* core i answered it */

inline serve(me) {
    request[me] = false;
    answered[me] = true
}

proctype Core(byte me) {
    byte mine = me;        /* the slot this core owns */
    byte pred;             /* its predecessor's slot */
    byte target;
    do
    ::
        /* Outside the kernel: take interrupts (remote calls) or enter. */
        do
        :: request[me] -> serve(me)
        :: break
        od;
        /* acquire */
        slot[mine] = PENDING;
#ifdef SPLITSWAP
        pred = tail;
        tail = mine;
#else
        atomic { pred = tail; tail = mine };
#endif
        do
        :: slot[pred] == GRANTED -> break
#ifndef NOHOOK
        :: request[me] -> serve(me)        /* the wait hook */
#endif
        od;
        /* critical section */
        inCS++;
progress:
        assert(inCS == 1);
        /* Maybe a remote call to another core, waiting for its answer while
         * holding the lock (what seL4 does for remote TLB shootdowns). */
        if
        :: skip
        :: select(target : 0 .. N - 1);
           if
           :: target != me ->
              request[target] = true;
              answered[target];            /* blocks until answered */
              answered[target] = false
           :: else -> skip
           fi;
           target = 0          /* dead: reset to keep the state space small */
        fi;
        inCS--;
        /* release: grant our slot, adopt the predecessor's */
        slot[mine] = GRANTED;
        mine = pred
    od
}

init {
    atomic {
        byte i;
        for (i : 0 .. N) { slot[i] = GRANTED };
        for (i : 0 .. N - 1) { run Core(i) }
    }
}
