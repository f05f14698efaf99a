/*
 * The MCS big lock of Sources/BigLock/MCSLock.swift, for 3 cores, in spin.
 * Node names are indices: 0 = none, i + 1 = core i's node.
 *
 * Checked as models/clh.pml: mutual exclusion, no deadlock (with the remote
 * call and wait hook), no livelock. -DNOHOOK must deadlock; -DSPLITSWAP (the
 * swap on `tail` as a load and a store) must let two cores in.
 * Sequentially consistent: orderings are argued in the Swift comments.
 */
#define N 3

byte tail = 0;
byte next[N + 1];
bool locked[N + 1];
byte inCS = 0;
bool request[N];
bool answered[N];

inline serve(me) {
    request[me] = false;
    answered[me] = true
}

proctype Core(byte me) {
    byte i = me + 1;
    byte pred, succ, target;
    do
    ::
        do
        :: request[me] -> serve(me)
        :: break
        od;
        /* acquire */
        next[i] = 0;
        locked[i] = true;
#ifdef SPLITSWAP
        pred = tail;
        tail = i;
#else
        atomic { pred = tail; tail = i };
#endif
        if
        :: pred != 0 ->
           next[pred] = i;
           do
           :: !locked[i] -> break
#ifndef NOHOOK
           :: request[me] -> serve(me)
#endif
           od
        :: else -> skip
        fi;
        pred = 0;                                       /* dead from here: reset, */
        /* critical section */
        inCS++;
progress:
        assert(inCS == 1);
        if
        :: skip
        :: select(target : 0 .. N - 1);
           if
           :: target != me ->
              request[target] = true;
              answered[target];
              answered[target] = false
           :: else -> skip
           fi;
           target = 0                                   /* (dead variables reset */
        fi;
        inCS--;
        /* release */
        succ = next[i];
        if
        :: succ == 0 ->
           if
           :: atomic { tail == i -> tail = 0 }          /* CAS succeeded */
           :: atomic { tail != i -> skip };             /* CAS failed: */
              (next[i] != 0);                           /* wait for the link */
              succ = next[i];
              locked[succ] = false
           fi
        :: else -> locked[succ] = false
        fi;
        succ = 0                                        /* to keep the state space small) */
    od
}

init {
    atomic {
        byte c;
        for (c : 0 .. N - 1) { run Core(c) }
    }
}
