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
}
