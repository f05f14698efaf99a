import Testing
@testable import BigLock

@Suite struct HistogramTests {
    @Test func bucketsAreContiguousAndOrdered() {
        for i in 0..<(LockHistogram.bucketCount - 1) {
            #expect(LockHistogram.upperBound(of: i) == LockHistogram.lowerBound(of: i + 1))
            #expect(LockHistogram.bucket(of: LockHistogram.lowerBound(of: i)) == i)
            #expect(LockHistogram.bucket(of: LockHistogram.upperBound(of: i) - 1) == i)
        }
        #expect(LockHistogram.bucket(of: .max) == LockHistogram.bucketCount - 1)
    }

    @Test func bucketWidthIsAtMostAnEighthOfItsLowerBound() {
        for i in 8..<(LockHistogram.bucketCount - 1) {
            let low = LockHistogram.lowerBound(of: i)
            #expect((LockHistogram.upperBound(of: i) - low) * 8 <= low)
        }
    }

    @Test func smallValuesAreExact() {
        var h = LockHistogram()
        for v: UInt64 in [0, 1, 1, 2, 7, 7, 7] { h.record(v) }
        #expect(h.count == 7)
        #expect(h.sum == 25)
        #expect(h.max == 7)
        #expect(h.percentile(0.0) == 0)
        #expect(h.percentile(0.5) == 2)
        #expect(h.percentile(1.0) == 7)
    }

    @Test func percentilesOfAUniformRangeAreWithinTheBucketError() {
        var h = LockHistogram()
        for v in 1...10_000 as ClosedRange<UInt64> { h.record(v) }
        for (fraction, exact) in [(0.5, 5000.0), (0.9, 9000.0), (0.99, 9900.0)] {
            let got = Double(h.percentile(fraction))
            #expect(abs(got - exact) / exact <= 0.0625, "p\(fraction * 100) = \(got), expected about \(exact)")
        }
        #expect(h.percentile(1.0) == 10_000)
        #expect(abs(h.mean - 5000.5) < 1e-9)
    }

    @Test func mergeAddsCountsSumsAndKeepsTheMax() {
        var a = LockHistogram(), b = LockHistogram()
        for v: UInt64 in [10, 20, 30] { a.record(v) }
        for v: UInt64 in [1000, 5] { b.record(v) }
        a.merge(b)
        #expect(a.count == 5)
        #expect(a.sum == 1065)
        #expect(a.max == 1000)
        #expect(a.buckets[LockHistogram.bucket(of: 1000)] == 1)
    }

    @Test func noProbeTakesNoSpace() {
        #expect(MemoryLayout<NoLockProbe>.size == 0)
        #expect(MemoryLayout<SpinWaitHook>.size == 0)
    }
}
